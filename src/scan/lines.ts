/** 1-based line numbers of character offsets, by binary search over the line starts. */
export interface LineIndex {
  lineOf(offset: number): number;
}

export function lineIndex(text: string): LineIndex {
  let starts: number[] | undefined;
  return {
    lineOf(offset) {
      // Built on first use: most files have no finding and never need it.
      if (!starts) {
        starts = [0];
        for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
      }
      let low = 0;
      let high = starts.length - 1;
      while (low < high) {
        const mid = (low + high + 1) >>> 1;
        if (starts[mid]! <= offset) low = mid;
        else high = mid - 1;
      }
      return low + 1;
    },
  };
}
