import Table from 'cli-table3';

const noBorders = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '   ',
};

/** A borderless table with an upper-case header row, like kubectl's (no header row when `head` is empty). */
export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, chars: noBorders, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } });
  t.push(...rows.map((row) => row.map(String)));
  return t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** Aligned "KEY  value" lines for one object. */
export function details(pairs: [string, string | number][]): string {
  return table([], pairs);
}

export function trafficText(traffic: { revision: string; percent: number }[]): string {
  return traffic.map((t) => `${t.revision}=${t.percent}`).join(' ');
}
