export {
  openDecisionLog,
  simulateRecorded,
  type DecisionLog,
  type DecisionLogOptions,
} from './decision-log.js';
