/**
 * The tables the tools print (import's report names images by the archive's ref.name): a name
 * carrying control characters is printed escaped, so an archive cannot move the terminal's
 * cursor, recolour it or rewrite the lines above (found by an attack on import, stop 32).
 */
import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/cli/tool-context.js';

describe('formatTable', () => {
  it('escapes C0 and C1 control characters and DEL in cells; other text is kept', () => {
    const table = formatTable(['IMAGE', 'STATUS'], [['docker.io/library/x:1\u001b[2J\r\nFAKE ok\u0000\u007f\u009b', 'FAILED'], ['docker.io/library/ünïcode:1', 'ok']]);
    const escaped = 'docker.io/library/x:1\\u001b[2J\\u000d\\u000aFAKE ok\\u0000\\u007f\\u009b';
    const lines = table.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toBe(`${escaped}  FAILED`);
    expect(lines[0]).toBe(`${'IMAGE'.padEnd(escaped.length)}  STATUS`);
    expect(lines[2]).toBe(`${'docker.io/library/ünïcode:1'.padEnd(escaped.length)}  ok`);
    expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});
