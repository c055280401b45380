export { maskValue, type FieldValue, type Mask } from './mask.js';
