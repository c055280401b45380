import fc from 'fast-check';

// Property tests run on a fixed seed so CI is reproducible; FC_SEED=random explores new cases locally,
// and a failure prints the seed and path that reproduce it.
const seed = process.env.FC_SEED;
if (seed !== 'random') fc.configureGlobal({ seed: seed ? Number(seed) : 20261129 });
