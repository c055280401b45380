import type { Command } from 'commander';
import { dirname, join } from 'node:path';
import { parseVerifierKey } from '../../audit/index.js';
import { InputError } from '../../errors/index.js';
import {
  createWitnessKey,
  openWitnessState,
  readWitnessKey,
  startWitnessServer,
  witnessVerifierKey,
} from '../../witness/index.js';
import { report } from '../context.js';

interface WitnessOptions {
  keyFile: string;
  json?: boolean;
}

export function registerWitnessCommands(program: Command): void {
  const witness = program
    .command('witness')
    .description('a C2SP tlog-witness that cosigns audit checkpoints (run it on another host)');

  witness
    .command('init')
    .description("make the witness's Ed25519 key and print its verifier key (vkey)")
    .requiredOption('--key-file <file>', 'where to write the private key (never overwritten)')
    .requiredOption('--name <name>', 'the witness name, e.g. witness.example.com/w1')
    .option('--json', 'machine-readable output')
    .action((options: WitnessOptions & { name: string }) => {
      const vkey = createWitnessKey(options.keyFile, options.name);
      report(options, vkey, { name: options.name, vkey, key_file: options.keyFile });
    });

  witness
    .command('serve')
    .description('serve POST /add-checkpoint for the logs whose keys are given')
    .requiredOption('--key-file <file>', 'the key `gatehouse witness init` wrote')
    .requiredOption(
      '--log <vkey>',
      "a log's verifier key (gatehouse audit public-key); repeat for more logs",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '8480')
    .option('--state <file>', 'the SQLite file of cosigned sizes (default: beside the key file)')
    .option('--json', 'machine-readable output')
    .action(
      async (options: WitnessOptions & { log: string[]; host: string; port: string; state?: string }) => {
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError('--port is not a port');
        if (options.log.length === 0) {
          throw new InputError('--log is required: the verifier key of each log this witness cosigns');
        }
        const logs = options.log.map((vkey) => parseVerifierKey(vkey));
        const cosigner = readWitnessKey(options.keyFile);
        const state = openWitnessState(
          options.state ?? join(dirname(options.keyFile), 'witness-state.sqlite'),
        );
        const server = await startWitnessServer({
          cosigner,
          logs,
          state,
          host: options.host,
          port,
          onOutcome: (outcome) => {
            if (outcome.status !== 200) process.stderr.write(`${JSON.stringify({ refused: outcome })}\n`);
          },
        });
        report(options, `witness ${cosigner.name} listening on ${server.url}`, {
          name: cosigner.name,
          url: server.url,
          vkey: witnessVerifierKey(cosigner),
        });
        const stop = () => {
          void server.close().then(() => {
            state.close();
            process.exit(0);
          });
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      },
    );
}
