export {
  grantedFields,
  maskFor,
  rowFilter,
  selectReadFields,
  type Action,
  type Fieldset,
  type Principal,
  type RolePolicy,
  type RowCondition,
} from './runtime.js';
