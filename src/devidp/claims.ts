import type { Config, DemoUser } from '../config/index.js';
import { GatehouseError } from '../errors/index.js';

/** The demo user named `name`, or USER_UNKNOWN (an own property only: `constructor` is no user). */
export function demoUser(config: Config, name: string): DemoUser {
  const user = Object.hasOwn(config.demoUsers, name) ? config.demoUsers[name] : undefined;
  if (!user) {
    const known = Object.keys(config.demoUsers).join(', ');
    throw new GatehouseError('USER_UNKNOWN', `no demo user of that name; demo users are ${known}`);
  }
  return user;
}

/** The identity claims of a demo user, as the IdP puts them in ID tokens and userinfo. */
export function demoUserClaims(config: Config, name: string): Record<string, string | boolean> {
  const user = demoUser(config, name);
  return {
    sub: name,
    email: user.email,
    email_verified: true,
    name: user.name,
    [config.idp.claims.role]: user.role,
    ...(user.territory ? { [config.idp.claims.territory]: user.territory } : {}),
  };
}
