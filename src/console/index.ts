/** The web console: its static files at /console (the calls it makes are the admin API, src/admin). */
export { registerConsole } from './static.js';
