import { Alert, List, Table } from '@mantine/core';
import { useCallback, useState, type ReactNode } from 'react';

/** What a view's last change did: green with what changed, red with why it was refused. */
export interface Outcome {
  color: 'green' | 'red';
  text: string;
}

/**
 * A view's changes: `change` runs one, shows the text it answers in green (or the refusal in red) and
 * reloads the view's data, so every view reports its changes alike.
 */
export function useChange(reload: () => Promise<unknown>) {
  const [outcome, setOutcome] = useState<Outcome | undefined>();
  const change = useCallback(
    async (run: () => Promise<string>) => {
      try {
        setOutcome({ color: 'green', text: await run() });
        await reload();
      } catch (error) {
        setOutcome({ color: 'red', text: (error as Error).message });
      }
    },
    [reload],
  );
  return { outcome, setOutcome, change };
}

/**
 * Runs a view's steps one at a time: `busy` while one runs (its buttons show they wait), and what
 * refused it handed to `refused` (undefined when a step starts, clearing the last refusal).
 */
export function useStep(refused: (message: string | undefined) => void) {
  const [busy, setBusy] = useState(false);
  const run = async (step: () => Promise<void>) => {
    setBusy(true);
    refused(undefined);
    try {
      await step();
    } catch (error) {
      refused((error as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return { busy, run };
}

/** The live region that announces an outcome to screen readers as it appears. */
export function OutcomeStatus({ outcome, label }: { outcome: Outcome | undefined; label?: string }) {
  return (
    <div role="status" aria-live="polite" aria-label={label}>
      {outcome && <Alert color={outcome.color}>{outcome.text}</Alert>}
    </div>
  );
}

/** The admission rules that decided a plan, each with its reason; `extra` lines follow them. */
export function RuleList({
  rules,
  extra = [],
}: {
  rules: readonly { id: string; reason: string }[];
  extra?: readonly string[];
}) {
  return (
    <List size="sm">
      {rules.map((rule) => (
        <List.Item key={rule.id}>
          <strong>{rule.id}</strong>: {rule.reason}
        </List.Item>
      ))}
      {extra.map((line) => (
        <List.Item key={line}>{line}</List.Item>
      ))}
    </List>
  );
}

/**
 * A table of items: a header row, then one row of cells per item, keyed by `keyOf`; `rowData` puts
 * `data-*` attributes on an item's row (what tests and styles find it by).
 */
export function PlainTable<T>({
  label,
  columns,
  items,
  keyOf,
  cells,
  rowData,
  striped,
  mt,
}: {
  label: string;
  columns: readonly string[];
  items: readonly T[];
  keyOf: (item: T) => string;
  cells: (item: T) => readonly ReactNode[];
  rowData?: (item: T) => Record<`data-${string}`, string>;
  striped?: boolean;
  mt?: string;
}) {
  return (
    <Table mt={mt} aria-label={label} striped={striped}>
      <Table.Thead>
        <Table.Tr>
          {columns.map((column) => (
            <Table.Th key={column}>{column}</Table.Th>
          ))}
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {items.map((item) => (
          <Table.Tr key={keyOf(item)} {...rowData?.(item)}>
            {cells(item).map((cell, i) => (
              <Table.Td key={i}>{cell}</Table.Td>
            ))}
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
