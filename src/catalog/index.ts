export { createCatalog, demoApps, type App, type AppStatus, type Catalog } from './apps.js';
