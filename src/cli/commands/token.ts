import type { Command } from 'commander';
import { InputError } from '../../errors/index.js';
import { callAdmin, currentLogin, localOperator } from '../login.js';
import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';

interface RevokeOptions extends CommonOptions {
  app?: string;
  user?: string;
  reason: string;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('access and refresh tokens issued by the broker');
  withCommonOptions(
    token
      .command('revoke')
      .description(
        'revoke every token of an app, of a user, or of a user in one app (holds on running servers within a second)',
      )
      .option('--app <id>', 'app id')
      .option('--user <email>', "user's email or subject")
      .requiredOption('--reason <text>', 'why; recorded with the revocation and in the audit trail'),
  ).action(async (options: RevokeOptions) => {
    if (!options.app && !options.user) throw new InputError('token revoke needs --app, --user or both');
    const config = commandConfig(options);
    const [{ revokeAll }, { auditOrigin, openAuditLog }, { openSecretStore }, { openStore }] =
      await Promise.all([
        import('../../broker/index.js'),
        import('../../audit/index.js'),
        import('../../secrets/index.js'),
        import('../../store/index.js'),
      ]);
    const store = await openStore(config);
    try {
      const audit = await openAuditLog({
        db: store.db,
        secrets: await openSecretStore(store.db, config.dataDir),
        origin: auditOrigin,
      });
      try {
        const result = await revokeAll(store.db, {
          appId: options.app,
          userId: options.user,
          ...(config.idp.issuer === undefined ? {} : { issuer: config.idp.issuer }),
          reason: options.reason,
          // No admin API revokes tokens by app or user: this runs on the server host, unverified.
          actor: localOperator.id,
          audit,
        });
        const target = [options.app && `app ${options.app}`, options.user && `user ${options.user}`]
          .filter(Boolean)
          .join(' / ');
        report(options, `revoked every token of ${target}`, result);
      } finally {
        await audit.close();
      }
    } finally {
      await store.close();
    }
  });

  const keys = program.command('keys').description("the broker's token signing keys");
  withCommonOptions(
    keys
      .command('rotate')
      .description(
        'publish a new signing key now; it signs after the publish lead time, the old one stays until its tokens expire',
      ),
  ).action(async (options: CommonOptions) => {
    const config = commandConfig(options);
    const [{ rotateSigningKey }, { openSecretStore }, { openStore }] = await Promise.all([
      import('../../broker/index.js'),
      import('../../secrets/index.js'),
      import('../../store/index.js'),
    ]);
    const store = await openStore(config);
    try {
      const kid = await rotateSigningKey({
        db: store.db,
        secrets: await openSecretStore(store.db, config.dataDir),
        publishLeadSeconds: config.broker.keyPublishLeadSeconds,
      });
      report(
        options,
        `new signing key ${kid} published; it signs in ${config.broker.keyPublishLeadSeconds}s`,
        { kid, publish_lead_seconds: config.broker.keyPublishLeadSeconds },
      );
    } finally {
      await store.close();
    }
  });

  withCommonOptions(
    keys
      .command('revoke')
      .description(
        'cut off a signing key that may have leaked: it leaves JWKS at once and its tokens are refused on every node within a second; audited',
      )
      .argument('[kid]', 'the key id (as in the JWKS and the tokens it signed)')
      // A base64url kid may begin with '-', which reads as an option: --kid=<kid> always works.
      .option('--kid <kid>', 'the key id, for one that begins with "-" (--kid=-AbC...)')
      .requiredOption('--reason <text>', 'why; recorded in the audit trail'),
  ).action(async (given: string | undefined, options: CommonOptions & { reason: string; kid?: string }) => {
    const kid = options.kid ?? given;
    if (kid === undefined) throw new InputError('keys revoke needs the key id: gatehouse keys revoke KID');
    if (options.reason.trim() === '') throw new InputError('keys revoke needs a --reason');
    const login = await currentLogin(options);
    if (login !== undefined) {
      const result = await callAdmin(login, 'POST', `/admin/v1/keys/${encodeURIComponent(kid)}/revoke`, {
        reason: options.reason,
      });
      report(options, `signing key ${kid} revoked by ${login.user}: out of JWKS, its tokens refused`, result);
      return;
    }
    const config = commandConfig(options);
    const [{ revokeSigningKey }, { auditOrigin, openAuditLog }, { openSecretStore }, { openStore }] =
      await Promise.all([
        import('../../broker/index.js'),
        import('../../audit/index.js'),
        import('../../secrets/index.js'),
        import('../../store/index.js'),
      ]);
    const store = await openStore(config);
    try {
      const secrets = await openSecretStore(store.db, config.dataDir);
      const audit = await openAuditLog({ db: store.db, secrets, origin: auditOrigin });
      try {
        const result = await revokeSigningKey({
          db: store.db,
          secrets,
          kid,
          reason: options.reason,
          actor: localOperator.id,
          audit,
        });
        report(
          options,
          `signing key ${result.kid} revoked: out of JWKS, its tokens refused; ${result.signing_kid} signs now`,
          result,
        );
      } finally {
        await audit.close();
      }
    } finally {
      await store.close();
    }
  });
}
