import '@mantine/core/styles.css';
import { createTheme, MantineProvider, type CSSVariablesResolver } from '@mantine/core';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ConsoleApp, SignedOut } from './App.js';
import { openSession } from './session.js';

// Darker primary shades than the default, so white text on buttons passes WCAG AA contrast.
const theme = createTheme({ primaryColor: 'indigo', primaryShade: 8, autoContrast: true });

// Secondary text and alert text darker than the defaults, for WCAG AA contrast.
const resolver: CSSVariablesResolver = () => ({
  variables: {},
  light: {
    '--mantine-color-dimmed': 'var(--mantine-color-gray-7)',
    // Text of light alerts and badges: the default shades fall under 4.5:1 on their own tints.
    '--mantine-color-green-light-color': '#1f6b30',
    '--mantine-color-red-light-color': '#a51d1d',
    '--mantine-color-blue-light-color': '#1c4f8a',
    // The current view in the navigation, also under the pointer (its hover tint is darker).
    '--mantine-color-indigo-light-color': '#2c3a91',
    '--mantine-color-orange-light-color': '#8a3a06',
    '--mantine-color-yellow-light-color': '#6b4a00',
  },
  dark: {},
});

const root = createRoot(document.getElementById('root')!);
const render = (content: React.ReactNode) =>
  root.render(
    <StrictMode>
      <MantineProvider theme={theme} cssVariablesResolver={resolver}>
        {content}
      </MantineProvider>
    </StrictMode>,
  );

if (location.pathname === '/console/signed-out') {
  render(<SignedOut />);
} else {
  openSession().then(
    (session) => session && render(<ConsoleApp session={session} />),
    (error: unknown) => render(<SignedOut error={error instanceof Error ? error.message : String(error)} />),
  );
}
