export { appResidency, regionOf, residencyConditions, transferOf, type PlanResidency } from './residency.js';
