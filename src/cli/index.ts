import { Command, CommanderError } from 'commander';
import { toCliLine } from '../errors/index.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerClassifyCommands } from './commands/classify.js';
import { registerComplianceCommands } from './commands/compliance.js';
import { registerDsrCommands } from './commands/dsr.js';
import { registerConfigCommands } from './commands/config.js';
import { registerCrmCommands } from './commands/crm.js';
import { registerCrmTokenCommand } from './commands/crm-token.js';
import { registerAppCommands } from './commands/app.js';
import { registerDevCommands } from './commands/dev.js';
import { registerDrillCommands } from './commands/drill.js';
import { registerSimulateCommand } from './commands/simulate.js';
import { registerLoginCommands } from './commands/login.js';
import { registerIncidentCommands } from './commands/incident.js';
import { registerScrubCommand } from './commands/scrub.js';
import { registerOffboardCommands } from './commands/offboard.js';
import { registerPlaybookCommands } from './commands/playbook.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerScanCommand } from './commands/scan.js';
import { registerSeedCommand } from './commands/seed.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTokenCommands } from './commands/token.js';
import { registerWitnessCommands } from './commands/witness.js';

/** Exit codes: 0 ok, 1 failed, 2 usage error; commands may define more (policy check: 3 = review). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('gatehouse')
    .description('Gatehouse: the governed front door between microapps and CRM data')
    .version(process.env.npm_package_version ?? '0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  registerServeCommand(program);
  registerSeedCommand(program);
  registerDevCommands(program);
  registerLoginCommands(program);
  registerAppCommands(program);
  registerOffboardCommands(program);
  registerPolicyCommands(program);
  registerPlaybookCommands(program);
  registerScanCommand(program);
  registerClassifyCommands(program);
  registerAuditCommands(program);
  registerTokenCommands(program);
  registerIncidentCommands(program);
  registerDrillCommands(program);
  registerConfigCommands(program);
  registerScrubCommand(program);
  registerSimulateCommand(program);
  registerComplianceCommands(program);
  registerDsrCommands(program);
  registerWitnessCommands(program);
  registerCrmCommands(program);
  registerCrmTokenCommand(program);
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
