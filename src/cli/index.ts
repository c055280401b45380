import { Command, CommanderError } from 'commander';
import { toCliLine } from '../errors/index.js';

type Register = (program: Command) => void;

/**
 * Each top-level command and what registers it, in `--help` order. Only the named command's module is
 * loaded (a command spawned by a script pays for its own imports, not every command's); `--help`, `help`
 * and an unknown name load them all.
 */
const commands: ReadonlyArray<readonly [names: readonly string[], load: () => Promise<Register[]>]> = [
  [['serve'], async () => [(await import('./commands/serve.js')).registerServeCommand]],
  [['seed'], async () => [(await import('./commands/seed.js')).registerSeedCommand]],
  [['dev'], async () => [(await import('./commands/dev.js')).registerDevCommands]],
  [['login', 'logout', 'whoami'], async () => [(await import('./commands/login.js')).registerLoginCommands]],
  [['app'], async () => [(await import('./commands/app.js')).registerAppCommands]],
  [['offboard'], async () => [(await import('./commands/offboard.js')).registerOffboardCommands]],
  [['policy'], async () => [(await import('./commands/policy.js')).registerPolicyCommands]],
  [['playbook'], async () => [(await import('./commands/playbook.js')).registerPlaybookCommands]],
  [['scan'], async () => [(await import('./commands/scan.js')).registerScanCommand]],
  [['classify'], async () => [(await import('./commands/classify.js')).registerClassifyCommands]],
  [['audit'], async () => [(await import('./commands/audit.js')).registerAuditCommands]],
  [['token', 'keys'], async () => [(await import('./commands/token.js')).registerTokenCommands]],
  [['incident'], async () => [(await import('./commands/incident.js')).registerIncidentCommands]],
  [['drill'], async () => [(await import('./commands/drill.js')).registerDrillCommands]],
  [['config'], async () => [(await import('./commands/config.js')).registerConfigCommands]],
  [['scrub'], async () => [(await import('./commands/scrub.js')).registerScrubCommand]],
  [['simulate'], async () => [(await import('./commands/simulate.js')).registerSimulateCommand]],
  [['compliance'], async () => [(await import('./commands/compliance.js')).registerComplianceCommands]],
  [['dsr'], async () => [(await import('./commands/dsr.js')).registerDsrCommands]],
  [['witness'], async () => [(await import('./commands/witness.js')).registerWitnessCommands]],
  [
    ['crm'],
    async () => [
      (await import('./commands/crm.js')).registerCrmCommands,
      (await import('./commands/crm-token.js')).registerCrmTokenCommand,
    ],
  ],
];

/** The registrations `argv` needs: its command's alone when the first argument names one, else all. */
async function registrationsFor(argv: readonly string[]): Promise<Register[]> {
  const named = commands.find(([names]) => names.includes(argv[2] ?? ''));
  const loads = named ? [named[1]] : commands.map(([, load]) => load);
  return (await Promise.all(loads.map((load) => load()))).flat();
}

/** Exit codes: 0 ok, 1 failed, 2 usage error; commands may define more (policy check: 3 = review). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('gatehouse')
    .description('Gatehouse: the governed front door between microapps and CRM data')
    .version(process.env.npm_package_version ?? '0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const register of await registrationsFor(argv)) register(program);
  for (const command of program.commands) command.exitOverride();

  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    process.stderr.write(`${toCliLine(error)}\n`);
    return 1;
  }
}
