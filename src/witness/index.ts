/** The transparency-log witness (`gatehouse witness`): its key, its state and its HTTP service. */
export { createWitnessKey, readWitnessKey, witnessVerifierKey } from './key.js';
export { openWitnessState, type WitnessState } from './state.js';
export { addCheckpoint, startWitnessServer, type WitnessOutcome, type WitnessServer } from './server.js';
