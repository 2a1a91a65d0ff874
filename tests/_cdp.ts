// A tiny Chrome DevTools Protocol client for browser tests: launches a
// headless chromium with a throw-away profile, talks to it over Deno's
// built-in WebSocket, and closes everything (process, profile, socket) so
// the test sanitizers stay happy. No npm, no puppeteer.

const decoder = new TextDecoder();

/** Names tried on `PATH` when `CHROMIUM_PATH` is not set. */
const CHROMIUM_NAMES = ["chromium", "chromium-browser"];

/** The chromium executable (`CHROMIUM_PATH`, else on `PATH`), or null. */
export function findChromium(): string | null {
  const explicit = Deno.env.get("CHROMIUM_PATH");
  const candidates = explicit ? [explicit] : [];
  if (!explicit) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      if (!dir) continue;
      for (const name of CHROMIUM_NAMES) candidates.push(`${dir}/${name}`);
    }
  }
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not there */ }
  }
  return null;
}

/** A CDP message as it comes off the socket. */
interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
  sessionId?: string;
}

type Listener = (params: Record<string, unknown>) => void;

/** One WebSocket to the browser; sessions share it (flat mode). */
class Connection {
  readonly #ws: WebSocket;
  readonly #closed: Promise<void>;
  readonly #pending = new Map<
    number,
    {
      resolve: (r: Record<string, unknown>) => void;
      reject: (e: Error) => void;
    }
  >();
  readonly #listeners = new Set<
    { method: string; sessionId: string | undefined; fn: Listener }
  >();
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => {
      ws.addEventListener("close", () => {
        for (const { reject } of this.#pending.values()) {
          reject(new Error("the DevTools connection closed"));
        }
        this.#pending.clear();
        resolve();
      });
    });
    ws.addEventListener("message", (event) => this.#receive(event.data));
  }

  static async open(url: string): Promise<Connection> {
    const ws = new WebSocket(url);
    const connection = new Connection(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener(
        "error",
        () => reject(new Error(`cannot connect to ${url}`)),
        { once: true },
      );
    });
    return connection;
  }

  #receive(data: unknown): void {
    const message = JSON.parse(String(data)) as Message;
    if (message.id !== undefined) {
      const waiter = this.#pending.get(message.id);
      if (!waiter) return;
      this.#pending.delete(message.id);
      if (message.error) {
        waiter.reject(new Error(`CDP error: ${message.error.message}`));
      } else waiter.resolve(message.result ?? {});
      return;
    }
    for (const listener of this.#listeners) {
      if (
        listener.method === message.method &&
        listener.sessionId === message.sessionId
      ) {
        listener.fn(message.params ?? {});
      }
    }
  }

  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`cannot send ${method}: socket closed`));
    }
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (r) => resolve(r as T),
        reject,
      });
      this.#ws.send(JSON.stringify({
        id,
        method,
        params,
        ...(sessionId ? { sessionId } : {}),
      }));
    });
  }

  on(method: string, fn: Listener, sessionId?: string): () => void {
    const listener = { method, sessionId, fn };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The next `method` event (matching `predicate`) within `ms`. */
  waitFor(
    method: string,
    options: {
      sessionId?: string | undefined;
      ms?: number;
      predicate?: (params: Record<string, unknown>) => boolean;
    } = {},
  ): Promise<Record<string, unknown>> {
    const { ms = 10_000, predicate = () => true } = options;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${ms} ms waiting for ${method}`));
      }, ms);
      const off = this.on(method, (params) => {
        if (!predicate(params)) return;
        clearTimeout(timer);
        off();
        resolve(params);
      }, options.sessionId);
    });
  }

  async close(): Promise<void> {
    if (
      this.#ws.readyState === WebSocket.OPEN ||
      this.#ws.readyState === WebSocket.CONNECTING
    ) {
      this.#ws.close();
    }
    await this.#closed;
  }
}

/** Where a page element is, for real mouse clicks. */
interface Box {
  x: number;
  y: number;
}

/** One tab, attached in flat mode. */
export class Page {
  readonly #connection: Connection;
  /** The CDP session of this tab. */
  readonly sessionId: string;
  /** The CDP target of this tab. */
  readonly targetId: string;

  constructor(connection: Connection, sessionId: string, targetId: string) {
    this.#connection = connection;
    this.sessionId = sessionId;
    this.targetId = targetId;
  }

  /** Sends a command to this tab. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<T> {
    return this.#connection.send<T>(method, params, this.sessionId);
  }

  /** Listens to an event of this tab; returns the unsubscribe function. */
  on(method: string, fn: Listener): () => void {
    return this.#connection.on(method, fn, this.sessionId);
  }

  /** The next event `method` of this tab. */
  waitForEvent(
    method: string,
    ms = 10_000,
    predicate?: (params: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> {
    return this.#connection.waitFor(method, {
      sessionId: this.sessionId,
      ms,
      ...(predicate ? { predicate } : {}),
    });
  }

  /** Navigates and waits for the `load` event. */
  async goto(url: string, ms = 10_000): Promise<void> {
    const loaded = this.waitForEvent("Page.loadEventFired", ms);
    const result = await this.send<{ errorText?: string }>("Page.navigate", {
      url,
    });
    if (result.errorText) {
      loaded.catch(() => {});
      throw new Error(`cannot load ${url}: ${result.errorText}`);
    }
    await loaded;
  }

  /** Evaluates `expression` (awaiting a promise) and returns its JSON value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const result = await this.send<{
      result: { value?: unknown };
      exceptionDetails?: {
        text: string;
        exception?: { description?: string };
      };
    }>("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
      userGesture: true,
    });
    if (result.exceptionDetails) {
      const details = result.exceptionDetails;
      throw new Error(
        `page threw: ${details.exception?.description ?? details.text}`,
      );
    }
    return result.result.value as T;
  }

  /** Polls `expression` every 50 ms until it is truthy; returns its value. */
  async waitForFunction<T = unknown>(
    expression: string,
    ms = 5_000,
    what = expression,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    while (true) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Clicks the centre of the first element matching `selector` with the mouse. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<Box | null>(`(() => {
      const node = document.querySelector(${JSON.stringify(selector)});
      if (!node) return null;
      node.scrollIntoView({ block: "center" });
      const r = node.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    if (!box) throw new Error(`no element matches ${selector}`);
    const base = { x: box.x, y: box.y, button: "left", clickCount: 1 };
    await this.send("Input.dispatchMouseEvent", {
      ...base,
      type: "mouseMoved",
    });
    await this.send("Input.dispatchMouseEvent", {
      ...base,
      type: "mousePressed",
    });
    await this.send("Input.dispatchMouseEvent", {
      ...base,
      type: "mouseReleased",
    });
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send<{ data: string }>(
      "Page.captureScreenshot",
      { format: "png" },
    );
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  /** Closes the tab. */
  async close(): Promise<void> {
    await this.#connection.send("Target.closeTarget", {
      targetId: this.targetId,
    }).catch(() => {});
  }
}

/** Options of {@link Browser.newPage}. */
export interface PageOptions {
  width?: number;
  height?: number;
  /** Headers sent with every request of the page (e.g. `Authorization`). */
  headers?: Record<string, string>;
  /** Open the page in a fresh browser context (own cookies and auth cache). */
  isolated?: boolean;
}

/** A running headless chromium. */
export class Browser implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #connection: Connection;
  readonly #profile: string;
  readonly #stderr: Promise<void>;
  /** The last lines chromium wrote to stderr, for diagnostics. */
  readonly log: string[];
  #closed = false;

  constructor(
    child: Deno.ChildProcess,
    connection: Connection,
    profile: string,
    stderr: Promise<void>,
    log: string[],
  ) {
    this.#child = child;
    this.#connection = connection;
    this.#profile = profile;
    this.#stderr = stderr;
    this.log = log;
  }

  /** Opens a tab at `about:blank` with Page, Runtime and Network enabled. */
  async newPage(options: PageOptions = {}): Promise<Page> {
    const { width = 1280, height = 800 } = options;
    let browserContextId: string | undefined;
    if (options.isolated) {
      ({ browserContextId } = await this.#connection.send<
        { browserContextId: string }
      >("Target.createBrowserContext", { disposeOnDetach: true }));
    }
    const { targetId } = await this.#connection.send<{ targetId: string }>(
      "Target.createTarget",
      {
        url: "about:blank",
        ...(browserContextId ? { browserContextId } : {}),
      },
    );
    const { sessionId } = await this.#connection.send<{ sessionId: string }>(
      "Target.attachToTarget",
      { targetId, flatten: true },
    );
    const page = new Page(this.#connection, sessionId, targetId);
    await Promise.all([
      page.send("Page.enable"),
      page.send("Runtime.enable"),
      page.send("Network.enable"),
      page.send("Emulation.setDeviceMetricsOverride", {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: false,
      }),
    ]);
    if (options.headers) {
      await page.send("Network.setExtraHTTPHeaders", {
        headers: options.headers,
      });
    }
    return page;
  }

  /**
   * Asks chromium to quit (`Browser.close`), kills it if it has not exited
   * within 3 s, then closes the socket and removes the profile.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), 3_000);
    });
    await Promise.race([
      this.#connection.send("Browser.close").catch(() => {}),
      timeout,
    ]);
    const exited = await Promise.race([this.#child.status, timeout]);
    clearTimeout(timer);
    if (exited === "timeout") {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
      await this.#child.status;
    }
    await this.#connection.close();
    await this.#stderr;
    await removeProfile(this.#profile);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

async function removeProfile(path: string): Promise<void> {
  for (let tries = 0;; tries++) {
    try {
      await Deno.remove(path, { recursive: true });
      return;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      // A helper process may still be writing into it for a moment.
      if (tries >= 10) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Starts headless chromium on a free DevTools port with a temporary profile
 * and connects to it.
 */
export async function launchChromium(
  executable: string,
  options: { timeoutMs?: number } = {},
): Promise<Browser> {
  const { timeoutMs = 15_000 } = options;
  const profile = await Deno.makeTempDir({ prefix: "hookgate-chromium-" });
  const child = new Deno.Command(executable, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--disable-dev-shm-usage",
      "--password-store=basic",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();

  // Read stderr to the end (chromium would block on a full pipe), keeping
  // the last lines and announcing the DevTools address.
  const log: string[] = [];
  let announce: (url: string) => void = () => {};
  const announced = new Promise<string>((resolve) => announce = resolve);
  const stderr = (async () => {
    let rest = "";
    for await (const chunk of child.stderr) {
      rest += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        log.push(line);
        if (log.length > 50) log.shift();
        const match = line.match(/DevTools listening on (ws:\/\/\S+)/);
        if (match) announce(match[1]!);
      }
    }
  })();

  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`chromium did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.status.then((status) =>
      reject(new Error(`chromium exited with code ${status.code}`))
    );
  });
  failed.catch(() => {});
  try {
    const url = await Promise.race([announced, failed]);
    const connection = await Connection.open(url);
    return new Browser(child, connection, profile, stderr, log);
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await stderr;
    await removeProfile(profile);
    throw new Error(
      `${(err as Error).message}; chromium said:\n${log.join("\n")}`,
    );
  } finally {
    clearTimeout(timer);
  }
}
