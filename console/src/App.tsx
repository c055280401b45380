import { Alert, AppShell, Anchor, Button, Container, Group, NavLink, Text, Title } from '@mantine/core';
import { useState } from 'react';
import { createBrowserRouter, Navigate, NavLink as RouterLink, Outlet, RouterProvider } from 'react-router';
import { SessionContext } from './context.js';
import type { Me, Session } from './session.js';
import { Audit } from './views/Audit.js';
import { Admin } from './views/Admin.js';
import { Keys } from './views/Keys.js';
import { Maker } from './views/Maker.js';
import { MyApps } from './views/MyApps.js';
import { Offboard } from './views/Offboard.js';
import { Policies } from './views/Policies.js';
import { Review } from './views/Review.js';

/** The console's views, each opened by a duty the user's role holds (everyone has "My apps"). */
const views = [
  { path: 'maker', label: 'My registrations', duty: 'maker', element: <Maker /> },
  { path: 'review', label: 'Review queue', duty: 'reviewer', element: <Review /> },
  { path: 'audit', label: 'Audit trail', duty: 'auditor', element: <Audit /> },
  { path: 'admin', label: 'Incidents & dashboards', duty: 'admin', element: <Admin /> },
  { path: 'policies', label: 'Policies', duty: 'admin', element: <Policies /> },
  { path: 'offboard', label: 'Offboarding', duty: 'admin', element: <Offboard /> },
  { path: 'keys', label: 'Signing keys', duty: 'admin', element: <Keys /> },
  { path: 'my-apps', label: 'My apps', duty: undefined, element: <MyApps /> },
] as const;

/** The view a user lands on: their most specific duty (a maker duty is everyone's, so it comes last). */
export function homeOf(me: Me): string {
  const order = ['admin', 'auditor', 'reviewer', 'maker'] as const;
  const path = { admin: 'admin', auditor: 'audit', reviewer: 'review', maker: 'maker' } as const;
  const duty = order.find((d) => me.duties.includes(d));
  return duty ? path[duty] : 'my-apps';
}

function Layout({ session }: { session: Session }) {
  const { me } = session;
  const open = views.filter((view) => view.duty === undefined || me.duties.includes(view.duty));
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 240, breakpoint: 'sm' }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Title order={2} size="h4">
            Gatehouse console
          </Title>
          <Group gap="sm">
            <Text size="sm" data-testid="whoami">
              {me.email} · {me.role} · duties: {me.duties.join(', ')}
            </Text>
            <Button size="xs" variant="default" onClick={() => void session.signOut()}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="sm" aria-label="Views" component="nav">
        {open.map((view) => (
          <NavLink key={view.path} component={RouterLink} to={`/${view.path}`} label={view.label} />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}

export function ConsoleApp({ session }: { session: Session }) {
  const open = views.filter((view) => view.duty === undefined || session.me.duties.includes(view.duty));
  const [router] = useState(() =>
    createBrowserRouter(
      [
        {
          path: '/',
          element: <Layout session={session} />,
          children: [
            { index: true, element: <Navigate to={`/${homeOf(session.me)}`} replace /> },
            ...open.map((view) => ({ path: view.path, element: view.element })),
            { path: '*', element: <NotOpen /> },
          ],
        },
      ],
      { basename: '/console' },
    ),
  );
  return (
    <SessionContext.Provider value={session}>
      <RouterProvider router={router} />
    </SessionContext.Provider>
  );
}

function NotOpen() {
  return (
    <Alert color="yellow" title="Not one of your views">
      This page does not exist, or your role does not open it. The views on the left are the ones your duties
      allow.
    </Alert>
  );
}

export function SignedOut({ error }: { error?: string }) {
  return (
    <Container size="sm" py="xl">
      <main>
        <Title order={1}>Gatehouse console</Title>
        {error ? (
          <Alert color="red" title="Sign-in failed" my="md">
            {error}
          </Alert>
        ) : (
          <Text my="md">You are signed out.</Text>
        )}
        <Anchor href="/console/">Sign in</Anchor>
      </main>
    </Container>
  );
}
