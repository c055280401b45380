import { describeTokenBucketStore } from '../../test/support/token-bucket-contract.js';
import { MemoryBuckets } from './buckets.js';

describeTokenBucketStore('memory', () => new MemoryBuckets());
