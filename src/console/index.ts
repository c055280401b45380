/** The web console: its static files at /console and the calls only it makes (who am I, my apps, a dry-run admission). */
export { registerConsole } from './static.js';
export { registerConsoleRoutes, type ConsoleRouteDeps, type GrantedApp } from './routes.js';
