/**
 * The folder-level cycle check (scripts/folder.cycles.mjs, run by `npm run lint`): file imports collapsed to folders
 * of src/, machines/ and the files directly in src/, and every cycle between those reported with its imports.
 */
import { describe, expect, it } from 'vitest';
import { folderCycles, folderOf } from '../../scripts/folder.cycles.mjs';

describe('folder cycle check', () => {
  it('collapses files to their top folder under src/, machines/, and keeps files directly in src/ apart', () => {
    expect(folderOf('src/providers/offline/seed.ts')).toBe('src/providers');
    expect(folderOf('src/runtime/leases.ts')).toBe('src/runtime');
    expect(folderOf('machines/blog.machine.ts')).toBe('machines');
    expect(folderOf('src/config.ts')).toBe('src/config.ts');
  });

  it('finds no cycle when folders depend one way, however many files import across', () => {
    const graph = {
      'src/intake/router.ts': ['src/runtime/leases.ts', 'src/intake/forward.port.ts', 'src/errors.ts'],
      'src/bus/forwarder.ts': ['src/intake/forward.port.ts', 'src/errors.ts'],
      'src/runtime/leases.ts': ['machines/blog.types.ts', 'src/runtime/supervisor.ts'],
      'src/runtime/supervisor.ts': ['src/runtime/leases.ts'],
      'src/errors.ts': ['machines/blog.types.ts'],
    };
    expect(folderCycles(graph)).toEqual([]);
  });

  it('reports a cycle through three folders with the imports that close it', () => {
    const graph = {
      'src/intake/router.ts': ['src/bus/forwarder.ts'],
      'src/bus/forwarder.ts': ['src/runtime/leases.ts'],
      'src/runtime/leases.ts': ['src/intake/intake.ts', 'src/db/lease.repo.ts'],
      'src/db/lease.repo.ts': [],
      'src/intake/intake.ts': [],
    };
    expect(folderCycles(graph)).toEqual([
      {
        folders: ['src/bus', 'src/intake', 'src/runtime'],
        path: ['src/bus', 'src/runtime', 'src/intake', 'src/bus'],
        imports: [
          'src/bus/forwarder.ts -> src/runtime/leases.ts',
          'src/runtime/leases.ts -> src/intake/intake.ts',
          'src/intake/router.ts -> src/bus/forwarder.ts',
        ],
      },
    ]);
  });

  it('counts a nested folder as its top folder: src/providers/offline importing back is no cycle', () => {
    const graph = {
      'src/providers/providers.ts': ['src/providers/offline/seed.ts'],
      'src/providers/offline/seed.ts': ['src/providers/html.ts'],
    };
    expect(folderCycles(graph)).toEqual([]);
  });
});
