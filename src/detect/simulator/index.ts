export {
  attackKinds,
  buildScenario,
  seededRandom,
  type Attack,
  type AttackKind,
  type Scenario,
  type ScenarioOptions,
  type SimUser,
} from './scenario.js';
export {
  acquireToken,
  runScenario,
  type RequestRecord,
  type RunOptions,
  type RunResult,
  type SimulationTarget,
} from './run.js';
export { summarize, type AttackOutcome, type SimulationSummary } from './summary.js';
export { renderReport, reportSeries } from './report.js';
