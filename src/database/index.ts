export { gatehouseMigrations, moduleMigrations, openGatehouseStore } from './migrations.js';
