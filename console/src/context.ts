import { createContext, useContext } from 'react';
import type { Session } from './session.js';

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new TypeError('useSession outside the signed-in console');
  return session;
}
