/**
 * `npm run inspect`: a local relay for live actor inspection, bound to loopback only.
 * Runtimes started with INKWELL_INSPECT=ws://127.0.0.1:<port> send their inspection events here; the relay
 * prints a line per event and forwards them to every other client (a viewer). It speaks the same protocol as
 * `@statelyai/inspect/server`, whose `createInspectorServer` listens on every interface and opens a browser, so
 * this one is written out. The page at http://127.0.0.1:<port>/ embeds Stately's hosted inspector UI: opening
 * it loads stately.ai in your browser and hands it the events there; the terminal output sends nothing anywhere.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';

const VIEWER_UI = 'https://stately.ai/inspect';

const viewerPage = (wsUrl: string) => `<!DOCTYPE html>
<html><head><title>Inkwell actors</title><style>html,body,iframe{margin:0;width:100%;height:100%;border:0}</style></head>
<body><iframe id="ui" src="${VIEWER_UI}"></iframe><script>
const ui = document.getElementById('ui'); const buffer = []; let ready = false;
addEventListener('message', (e) => { if (e.data && e.data.type === '@statelyai.connected') { ready = true; buffer.splice(0).forEach((d) => ui.contentWindow.postMessage(d, '*')); } });
new WebSocket('${wsUrl}').onmessage = (e) => { const d = JSON.parse(e.data); ready ? ui.contentWindow.postMessage(d, '*') : buffer.push(d); };
</script></body></html>`;

/** A running relay. */
export interface InspectRelay {
  /** What to set INKWELL_INSPECT to. */
  url: string;
  /** The viewer page. */
  viewerUrl: string;
  close(): Promise<void>;
}

/** Starts the relay on `host:port` (port 0 picks a free one); `onEvent` sees every message a runtime sends. */
export async function startInspectRelay(
  options: {
    host?: string;
    port?: number;
    onEvent?: (event: Record<string, unknown>) => void;
    onConnection?: () => void;
  } = {},
): Promise<InspectRelay> {
  const host = options.host ?? '127.0.0.1';
  const recent: string[] = []; // replayed to a viewer that connects late
  let url = '';
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end(viewerPage(url));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => {
    options.onConnection?.();
    recent.forEach((m) => socket.send(m));
    socket.on('message', (data) => {
      const message = (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Uint8Array)).toString('utf8');
      recent.push(message);
      if (recent.length > 500) recent.shift();
      for (const client of wss.clients)
        if (client !== socket && client.readyState === WebSocket.OPEN) client.send(message);
      try {
        options.onEvent?.(JSON.parse(message) as Record<string, unknown>);
      } catch {
        // not JSON: forwarded, not printed
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 8080, host, resolve));
  const { port } = server.address() as AddressInfo;
  url = `ws://${host}:${port}`;
  return {
    url,
    viewerUrl: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        wss.clients.forEach((c) => c.terminate());
        wss.close();
        server.close(() => resolve());
      }),
  };
}

function describe(event: Record<string, unknown>): string {
  const snapshot = event.snapshot as { value?: unknown } | undefined;
  const sent = event.event as { type?: string } | undefined;
  const detail = event.type === '@xstate.event' ? sent?.type : JSON.stringify(snapshot?.value ?? '');
  return `${String(event.type)} ${typeof event.sessionId === 'string' ? event.sessionId : ''} ${detail ?? ''}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.INKWELL_INSPECT_PORT ?? 8080);
  const relay = await startInspectRelay({ port, onEvent: (e) => console.log(describe(e)) });
  console.log(`inspection relay on ${relay.url} (loopback only)`);
  console.log(`start Inkwell with INKWELL_INSPECT=${relay.url}`);
  console.log(`events are printed here; to see the charts, open ${relay.viewerUrl} (loads ${VIEWER_UI})`);
  const stop = () => void relay.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
