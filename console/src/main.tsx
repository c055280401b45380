import '@mantine/core/styles.css';
import { createTheme, MantineProvider } from '@mantine/core';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ConsoleApp, SignedOut } from './App.js';
import { openSession } from './session.js';

// Darker primary shades than the default, so white text on buttons passes WCAG AA contrast.
const theme = createTheme({ primaryColor: 'indigo', primaryShade: 8, autoContrast: true });

const root = createRoot(document.getElementById('root')!);
const render = (content: React.ReactNode) =>
  root.render(
    <StrictMode>
      <MantineProvider theme={theme}>{content}</MantineProvider>
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
