/**
 * Last-resort servers for tests: throwaway containers started with testcontainers when a Docker engine answers.
 * Loaded lazily, so machines without Docker never pay for importing testcontainers. Ryuk removes the containers
 * when the test process exits.
 */

/** Which server a test needs. */
export type ServerKind = 'postgres' | 'nats' | 'redis';

let dockerAnswers: Promise<boolean> | undefined;

/** True when testcontainers finds a working container runtime (Docker, Podman, ...). */
export function isDockerAvailable(): Promise<boolean> {
  dockerAnswers ??= (async () => {
    try {
      const { getContainerRuntimeClient } = await import('testcontainers');
      await getContainerRuntimeClient();
      return true;
    } catch {
      return false;
    }
  })();
  return dockerAnswers;
}

/** Starts a container for `kind` and returns the URL to reach it (an admin URL for PostgreSQL). */
export async function startContainer(kind: ServerKind): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  switch (kind) {
    case 'postgres': {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const container = await new PostgreSqlContainer('postgres:15').start();
      return container.getConnectionUri();
    }
    case 'nats': {
      const container = await new GenericContainer('nats:2.10')
        .withCommand(['-js'])
        .withExposedPorts(4222)
        .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
        .start();
      return `nats://${container.getHost()}:${container.getMappedPort(4222)}`;
    }
    case 'redis': {
      const container = await new GenericContainer('redis:7')
        .withExposedPorts(6379)
        .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
        .start();
      return `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
    }
  }
}
