import assert from "node:assert/strict";
import {
  type Config,
  CONFIG_VARIABLES,
  ConfigError,
  loadConfig,
  mergeEnv,
  parseDotenv,
  readEnvironment,
} from "../../lib/config/config.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

const SECRET = "It's a Secret to Everybody";

/** loadConfig() with a valid secret plus `env`. */
function load(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({ GITHUB_WEBHOOK_SECRET: SECRET, ...env });
}

/** The ConfigError loadConfig() throws for `env` (fails when it does not throw). */
function problemsOf(env: Record<string, string | undefined>): string[] {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof ConfigError,
    `expected a ConfigError, got ${caught}`,
  );
  return caught.problems;
}

const NUMBERS: [string, keyof Config, number][] = [
  ["MAX_BODY_BYTES", "maxBodyBytes", 26_214_400],
  ["GITHUB_META_REFRESH_SECONDS", "metaRefreshSeconds", 3600],
  ["HANDLER_TIMEOUT_MS", "handlerTimeoutMs", 30_000],
  ["MAX_CONCURRENCY", "maxConcurrency", 8],
  ["BODY_TIMEOUT_MS", "bodyTimeoutMs", 10_000],
  ["MAX_ATTEMPTS", "maxAttempts", 5],
];

/** The largest value of each timer variable that setTimeout (max 2^31 - 1 ms) can honour. */
const TIMER_LIMITS: Record<string, number> = {
  HANDLER_TIMEOUT_MS: 2_147_483_647,
  BODY_TIMEOUT_MS: 2_147_483_647,
  GITHUB_META_REFRESH_SECONDS: 2_147_483,
};

const NOT_POSITIVE_INTEGERS: [string, string][] = [
  ["a word", "abc"],
  ["zero", "0"],
  ["a negative number", "-1"],
  ["a float", "1.5"],
  ["exponent notation", "1e3"],
  ["hex notation", "0x10"],
  ["a leading plus", "+5"],
  ["Infinity", "Infinity"],
  ["digits then letters", "12abc"],
  ["an inner space", "1 000"],
  ["an underscore separator", "1_000"],
  ["above Number.MAX_SAFE_INTEGER", "9007199254740992"],
];

Deno.test(
  "loadConfig() resolves the contract's defaults from the secret alone",
  SANITIZE,
  () => {
    const config = loadConfig({ GITHUB_WEBHOOK_SECRET: SECRET });
    assert.deepEqual(
      config,
      {
        secrets: [SECRET],
        port: 8000,
        host: "0.0.0.0",
        webhookPath: "/webhook",
        maxBodyBytes: 26_214_400,
        ipAllowlist: "github",
        extraAllowedCidrs: [],
        trustedProxies: [],
        metaUrl: "https://api.github.com/meta",
        metaRefreshSeconds: 3600,
        githubToken: undefined,
        githubApp: null,
        githubApiUrl: "https://api.github.com",
        kvPath: "./data/hookgate.kv",
        adminToken: undefined,
        handlerTimeoutMs: 30_000,
        maxConcurrency: 8,
        bodyTimeoutMs: 10_000,
        maxAttempts: 5,
        deliveryTtlMs: 7 * 86_400_000,
        logLevel: "info",
        logFormat: "json",
        deploy: false,
        hooksDir: null,
        hooksEnv: [],
        serializeBy: "none",
        kvLimits: undefined,
        reconcileIntervalMinutes: null,
        forwardUrls: [],
        forwardSecret: undefined,
      } satisfies Config,
    );
  },
);

Deno.test(
  "loadConfig() treats empty and blank optional variables as unset",
  SANITIZE,
  async (t) => {
    for (const value of ["", "   ", "\t"]) {
      await t.step(JSON.stringify(value), () => {
        const env: Record<string, string> = {};
        for (const name of CONFIG_VARIABLES) env[name] = value;
        env.GITHUB_WEBHOOK_SECRET = SECRET;
        if (value !== "") {
          // Secrets and the admin token are taken verbatim, never trimmed.
          delete env.GITHUB_WEBHOOK_SECRET_PREVIOUS;
          delete env.ADMIN_TOKEN;
        }
        assert.deepEqual(loadConfig(env), load());
      });
    }
  },
);

Deno.test(
  "loadConfig() names GITHUB_WEBHOOK_SECRET when it is missing or empty",
  SANITIZE,
  async (t) => {
    const table: [string, Record<string, string | undefined>][] = [
      ["absent", {}],
      ["undefined", { GITHUB_WEBHOOK_SECRET: undefined }],
      ["empty", { GITHUB_WEBHOOK_SECRET: "" }],
      ["empty with a previous secret", {
        GITHUB_WEBHOOK_SECRET: "",
        GITHUB_WEBHOOK_SECRET_PREVIOUS: "old",
      }],
    ];
    for (const [name, env] of table) {
      await t.step(name, () => {
        const problems = problemsOf(env);
        assert.equal(problems.length, 1);
        assert.match(problems[0]!, /^GITHUB_WEBHOOK_SECRET is not set/);
      });
    }
  },
);

Deno.test(
  "loadConfig() keeps the secret exactly as given, without trimming",
  SANITIZE,
  () => {
    assert.deepEqual(
      loadConfig({ GITHUB_WEBHOOK_SECRET: ` ${SECRET} \n` }).secrets,
      [
        ` ${SECRET} \n`,
      ],
    );
  },
);

Deno.test(
  "loadConfig() lists the previous secret after the current one",
  SANITIZE,
  async (t) => {
    await t.step("set", () => {
      assert.deepEqual(
        load({ GITHUB_WEBHOOK_SECRET_PREVIOUS: "old" }).secrets,
        [
          SECRET,
          "old",
        ],
      );
    });
    await t.step("empty", () => {
      assert.deepEqual(load({ GITHUB_WEBHOOK_SECRET_PREVIOUS: "" }).secrets, [
        SECRET,
      ]);
    });
    await t.step("unset", () => {
      assert.deepEqual(
        load({ GITHUB_WEBHOOK_SECRET_PREVIOUS: undefined }).secrets,
        [SECRET],
      );
    });
  },
);

Deno.test(
  "loadConfig() accepts any positive integer for the numeric variables",
  SANITIZE,
  async (t) => {
    for (const [name, key] of NUMBERS) {
      for (
        const [raw, expected] of [["1", 1], ["250", 250], [" 42 ", 42], [
          "007",
          7,
        ]] as const
      ) {
        await t.step(`${name}=${JSON.stringify(raw)}`, () => {
          assert.equal(load({ [name]: raw })[key], expected);
        });
      }
      const largest = TIMER_LIMITS[name] ?? Number.MAX_SAFE_INTEGER;
      await t.step(`${name}=${largest}`, () => {
        assert.equal(load({ [name]: String(largest) })[key], largest);
      });
    }
  },
);

Deno.test({
  ...SANITIZE,
  // Regression test (found by review).
  name: "loadConfig() rejects timer values longer than setTimeout can wait",
  fn: async (t) => {
    for (const [name, largest] of Object.entries(TIMER_LIMITS)) {
      await t.step(`${name}=${largest + 1}`, () => {
        const problems = problemsOf({
          GITHUB_WEBHOOK_SECRET: SECRET,
          [name]: String(largest + 1),
        });
        assert.equal(problems.length, 1);
        assert.match(problems[0]!, new RegExp(`^${name} `));
      });
    }
  },
});

Deno.test(
  "loadConfig() rejects numeric variables that are not positive integers",
  SANITIZE,
  async (t) => {
    for (
      const [name] of [...NUMBERS, ["DELIVERY_TTL_DAYS"], ["PORT"]] as const
    ) {
      for (const [label, raw] of NOT_POSITIVE_INTEGERS) {
        if (name === "PORT" && raw === "0") continue; // PORT=0 picks a free port
        await t.step(`${name}: ${label}`, () => {
          const problems = problemsOf({
            GITHUB_WEBHOOK_SECRET: SECRET,
            [name]: raw,
          });
          assert.equal(problems.length, 1);
          assert.match(
            problems[0]!,
            new RegExp(`^${name} must be a positive integer`),
          );
          assert.ok(
            problems[0]!.endsWith(`current value is ${JSON.stringify(raw)}`),
            problems[0],
          );
        });
      }
    }
  },
);

Deno.test("loadConfig() reads PORT and HOST", SANITIZE, async (t) => {
  await t.step(
    "PORT=9000",
    () => assert.equal(load({ PORT: "9000" }).port, 9000),
  );
  await t.step(
    "PORT=65535",
    () => assert.equal(load({ PORT: "65535" }).port, 65535),
  );
  await t.step(
    "PORT=0 asks for a free port",
    () => assert.equal(load({ PORT: "0" }).port, 0),
  );
  await t.step("PORT=65536 is out of range", () => {
    const problems = problemsOf({
      GITHUB_WEBHOOK_SECRET: SECRET,
      PORT: "65536",
    });
    assert.deepEqual(problems, [
      'PORT must be a positive integer up to 65535: current value is "65536"',
    ]);
  });
  await t.step(
    "HOST=:: (dual stack)",
    () => assert.equal(load({ HOST: "::" }).host, "::"),
  );
  await t.step("HOST that is neither an IP address nor a host name", () => {
    for (const host of ["bogus..host", "-x.example", "a b", "1.2.3.4:80"]) {
      assert.throws(
        () => load({ HOST: host }),
        /HOST must be an IP address or a host name/,
      );
    }
    assert.equal(load({ HOST: "localhost" }).host, "localhost");
    assert.equal(load({ HOST: "hooks.example.com" }).host, "hooks.example.com");
  });
  await t.step("HOST=127.0.0.1", () => {
    assert.equal(load({ HOST: " 127.0.0.1 " }).host, "127.0.0.1");
  });
});

Deno.test(
  "loadConfig() reads DELIVERY_TTL_DAYS as milliseconds, up to 100 years",
  SANITIZE,
  async (t) => {
    await t.step(
      "1",
      () =>
        assert.equal(
          load({ DELIVERY_TTL_DAYS: "1" }).deliveryTtlMs,
          86_400_000,
        ),
    );
    await t.step("36500", () => {
      assert.equal(
        load({ DELIVERY_TTL_DAYS: "36500" }).deliveryTtlMs,
        36_500 * 86_400_000,
      );
    });
    await t.step("36501", () => {
      assert.deepEqual(
        problemsOf({
          GITHUB_WEBHOOK_SECRET: SECRET,
          DELIVERY_TTL_DAYS: "36501",
        }),
        [
          'DELIVERY_TTL_DAYS must be a positive integer up to 36500: current value is "36501"',
        ],
      );
    });
  },
);

Deno.test("loadConfig() reads WEBHOOK_PATH", SANITIZE, async (t) => {
  const ok = ["/", "/hooks/github", "/a-b_c.d~e", "/x%20y", "/v1/hook:push"];
  for (const path of ok) {
    await t.step(
      `accepts ${path}`,
      () => assert.equal(load({ WEBHOOK_PATH: path }).webhookPath, path),
    );
  }
  const bad = [
    "webhook",
    "http://x/webhook",
    "/a b",
    "/a?b=1",
    "/a#b",
    "/ü",
    "/a\\b",
    '/"x"',
  ];
  for (const path of bad) {
    await t.step(`rejects ${JSON.stringify(path)}`, () => {
      const problems = problemsOf({
        GITHUB_WEBHOOK_SECRET: SECRET,
        WEBHOOK_PATH: path,
      });
      assert.deepEqual(problems, [
        `WEBHOOK_PATH must be a URL path starting with "/": current value is ${
          JSON.stringify(path)
        }`,
      ]);
    });
  }
});

Deno.test("loadConfig() reads IP_ALLOWLIST", SANITIZE, async (t) => {
  for (
    const [raw, expected] of [["github", "github"], ["off", "off"], [
      "OFF",
      "off",
    ], [" GitHub ", "github"]]
  ) {
    await t.step(`accepts ${JSON.stringify(raw)}`, () => {
      assert.equal(load({ IP_ALLOWLIST: raw }).ipAllowlist, expected);
    });
  }
  for (const raw of ["on", "true", "false", "0", "none", "github,off"]) {
    await t.step(`rejects ${JSON.stringify(raw)}`, () => {
      assert.deepEqual(
        problemsOf({ GITHUB_WEBHOOK_SECRET: SECRET, IP_ALLOWLIST: raw }),
        [
          `IP_ALLOWLIST must be one of github, off: current value is ${
            JSON.stringify(raw)
          }`,
        ],
      );
    });
  }
});

Deno.test(
  "loadConfig() reads LOG_LEVEL and LOG_FORMAT",
  SANITIZE,
  async (t) => {
    for (const level of ["debug", "info", "warn", "error"] as const) {
      await t.step(
        `LOG_LEVEL=${level}`,
        () => assert.equal(load({ LOG_LEVEL: level }).logLevel, level),
      );
    }
    await t.step(
      "LOG_LEVEL=WARN",
      () => assert.equal(load({ LOG_LEVEL: "WARN" }).logLevel, "warn"),
    );
    for (const raw of ["trace", "warning", "fatal", "1"]) {
      await t.step(`rejects LOG_LEVEL=${raw}`, () => {
        assert.deepEqual(
          problemsOf({ GITHUB_WEBHOOK_SECRET: SECRET, LOG_LEVEL: raw }),
          [
            `LOG_LEVEL must be one of debug, info, warn, error: current value is ${
              JSON.stringify(raw)
            }`,
          ],
        );
      });
    }
    for (const format of ["json", "pretty"] as const) {
      await t.step(`LOG_FORMAT=${format}`, () => {
        assert.equal(load({ LOG_FORMAT: format }).logFormat, format);
      });
    }
    await t.step(
      "LOG_FORMAT=Pretty",
      () => assert.equal(load({ LOG_FORMAT: "Pretty" }).logFormat, "pretty"),
    );
    for (const raw of ["text", "logfmt", "JSONL"]) {
      await t.step(`rejects LOG_FORMAT=${raw}`, () => {
        assert.deepEqual(
          problemsOf({ GITHUB_WEBHOOK_SECRET: SECRET, LOG_FORMAT: raw }),
          [
            `LOG_FORMAT must be one of json, pretty: current value is ${
              JSON.stringify(raw)
            }`,
          ],
        );
      });
    }
  },
);

Deno.test(
  "loadConfig() parses EXTRA_ALLOWED_CIDRS and TRUSTED_PROXIES",
  SANITIZE,
  async (t) => {
    for (
      const [name, key] of [["EXTRA_ALLOWED_CIDRS", "extraAllowedCidrs"], [
        "TRUSTED_PROXIES",
        "trustedProxies",
      ]] as const
    ) {
      await t.step(`${name}: a list with spaces and empty items`, () => {
        const cidrs =
          load({ [name]: " 10.1.2.3/8, ,192.168.1.1,2001:db8::/32 ," })[key];
        assert.deepEqual(cidrs.map((c) => c.text), [
          "10.0.0.0/8",
          "192.168.1.1/32",
          "2001:db8::/32",
        ]);
      });
      await t.step(
        `${name}: only commas`,
        () => assert.deepEqual(load({ [name]: ",," })[key], []),
      );
      for (
        const bad of [
          "10.0.0.0/33",
          "nope",
          "1.2.3.4/",
          "1.2.3.4/24abc",
          "::/129",
          "10.0.0.0/8/8",
          "01.2.3.4",
        ]
      ) {
        await t.step(`${name}: rejects ${bad}`, () => {
          const problems = problemsOf({
            GITHUB_WEBHOOK_SECRET: SECRET,
            [name]: `10.0.0.0/8,${bad}`,
          });
          assert.deepEqual(problems, [
            `${name} holds an invalid CIDR: ${JSON.stringify(bad)}`,
          ]);
        });
      }
      await t.step(`${name}: names every bad item`, () => {
        const problems = problemsOf({
          GITHUB_WEBHOOK_SECRET: SECRET,
          [name]: "x,10.0.0.0/8,y",
        });
        assert.deepEqual(problems, [
          `${name} holds an invalid CIDR: "x"`,
          `${name} holds an invalid CIDR: "y"`,
        ]);
      });
    }
  },
);

Deno.test(
  "loadConfig() refuses CIDRs wider than the widest private block (/8, fc00::/7), naming the variable",
  SANITIZE,
  async (t) => {
    const risk = {
      TRUSTED_PROXIES: "any client could forge X-Forwarded-For",
      EXTRA_ALLOWED_CIDRS: "anyone could pass the IP allowlist",
    } as const;
    for (const name of ["TRUSTED_PROXIES", "EXTRA_ALLOWED_CIDRS"] as const) {
      for (
        const [wide, text, limit] of [
          ["0.0.0.0/0", "0.0.0.0/0", "/8"],
          ["128.0.0.0/1", "128.0.0.0/1", "/8"],
          ["10.0.0.0/7", "10.0.0.0/7", "/8"],
          ["::/0", "::/0", "/7"],
          ["fc00::/6", "fc00::/6", "/7"],
          ["::ffff:0.0.0.0/96", "::ffff:0.0.0.0/96", "/8 (IPv4-mapped)"],
          ["::ffff:10.0.0.0/103", "::ffff:10.0.0.0/103", "/8 (IPv4-mapped)"],
        ]
      ) {
        await t.step(`${name}: refuses ${wide}`, () => {
          assert.deepEqual(
            problemsOf({ GITHUB_WEBHOOK_SECRET: SECRET, [name]: wide }),
            [`${name} holds ${text}, wider than ${limit}: ${risk[name]}`],
          );
        });
      }
      await t.step(`${name}: takes the private blocks`, () => {
        const cidrs = load({
          [name]: "10.0.0.0/8,fc00::/7,fd00::/8,::ffff:10.0.0.0/104,::1/128",
        });
        const key = name === "TRUSTED_PROXIES"
          ? "trustedProxies"
          : "extraAllowedCidrs";
        assert.equal(cidrs[key].length, 5);
      });
    }
  },
);

Deno.test(
  "loadConfig() refuses a secret or admin token under 16 characters, naming it and never its value",
  SANITIZE,
  async (t) => {
    const hint = "`deno task secret`";
    for (
      const [name, value] of [
        ["GITHUB_WEBHOOK_SECRET", "x9z"],
        ["GITHUB_WEBHOOK_SECRET", "fifteen-chars-x"],
        ["GITHUB_WEBHOOK_SECRET", "  fifteen-chars-x  "],
        ["GITHUB_WEBHOOK_SECRET", "ünïcödé-çhärs-x"],
        ["ADMIN_TOKEN", "tk9"],
        ["ADMIN_TOKEN", "fifteen-chars-x"],
        ["ADMIN_TOKEN", "   short   token   "],
      ] as const
    ) {
      await t.step(`${name}=${JSON.stringify(value)}`, () => {
        const problems = problemsOf({
          GITHUB_WEBHOOK_SECRET: SECRET,
          [name]: value,
        });
        assert.equal(problems.length, 1);
        assert.ok(
          problems[0]!.startsWith(
            `${name} is shorter than 16 characters: `,
          ),
          problems[0],
        );
        assert.ok(problems[0]!.includes(hint), "points at deno task secret");
        assert.ok(!problems[0]!.includes(value.trim()), "never the value");
      });
    }
    await t.step("16 characters (not bytes) are enough", () => {
      assert.equal(
        load({ ADMIN_TOKEN: "sixteen-chars-xy" }).adminToken,
        "sixteen-chars-xy",
      );
      assert.deepEqual(
        loadConfig({ GITHUB_WEBHOOK_SECRET: "ünïcödé-çhärs-xy" }).secrets,
        ["ünïcödé-çhärs-xy"],
      );
    });
    await t.step(
      "the previous secret may be short: rotating away from it must work",
      () => {
        assert.deepEqual(
          load({ GITHUB_WEBHOOK_SECRET_PREVIOUS: "old" }).secrets,
          [SECRET, "old"],
        );
      },
    );
  },
);

Deno.test("loadConfig() reads GITHUB_META_URL", SANITIZE, async (t) => {
  for (
    const url of [
      "http://127.0.0.1:8080/meta",
      "https://github.example.com/api/v3/meta",
      "http://[::1]:9/meta",
    ]
  ) {
    await t.step(
      `accepts ${url}`,
      () => assert.equal(load({ GITHUB_META_URL: url }).metaUrl, url),
    );
  }
  for (
    const url of [
      "not a url",
      "ftp://example.com/meta",
      "file:///etc/passwd",
      "api.github.com/meta",
      "data:,{}",
    ]
  ) {
    await t.step(`rejects ${url}`, () => {
      assert.deepEqual(
        problemsOf({ GITHUB_WEBHOOK_SECRET: SECRET, GITHUB_META_URL: url }),
        [
          `GITHUB_META_URL must be an http(s) URL: current value is ${
            JSON.stringify(url)
          }`,
        ],
      );
    });
  }
});

Deno.test("loadConfig() reads the optional tokens", SANITIZE, async (t) => {
  await t.step("GITHUB_TOKEN is trimmed", () => {
    assert.equal(load({ GITHUB_TOKEN: " ghp_abc " }).githubToken, "ghp_abc");
  });
  await t.step("GITHUB_TOKEN empty is unset", () => {
    assert.equal(load({ GITHUB_TOKEN: "" }).githubToken, undefined);
  });
  await t.step(
    "ADMIN_TOKEN set",
    () =>
      assert.equal(
        load({ ADMIN_TOKEN: "adm-0123456789abcdef" }).adminToken,
        "adm-0123456789abcdef",
      ),
  );
  await t.step("ADMIN_TOKEN empty disables the admin API", () => {
    assert.equal(load({ ADMIN_TOKEN: "" }).adminToken, undefined);
  });
});

/** A stand-in for a private key's text: loadConfig() never parses it. */
const KEY_TEXT =
  "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAsecretbits\\n-----END RSA PRIVATE KEY-----";

Deno.test(
  "loadConfig() reads the GitHub App variables",
  SANITIZE,
  async (t) => {
    const ids = ["1", "123456", "Iv1.0123456789abcdef", "Iv23liAbCdEf01234567"];
    for (const id of ids) {
      await t.step(`GITHUB_APP_ID=${id} with a key path`, () => {
        assert.deepEqual(
          load({
            GITHUB_APP_ID: ` ${id} `,
            GITHUB_APP_PRIVATE_KEY_PATH: "app.pem",
          })
            .githubApp,
          { id, key: { path: "app.pem" } },
        );
      });
    }
    await t.step("GITHUB_APP_PRIVATE_KEY is kept as text, trimmed", () => {
      assert.deepEqual(
        load({ GITHUB_APP_ID: "42", GITHUB_APP_PRIVATE_KEY: `\n${KEY_TEXT}\n` })
          .githubApp,
        { id: "42", key: { text: KEY_TEXT } },
      );
    });
    await t.step("empty App variables are no App", () => {
      const config = load({
        GITHUB_APP_ID: "",
        GITHUB_APP_PRIVATE_KEY: " ",
        GITHUB_APP_PRIVATE_KEY_PATH: "",
      });
      assert.equal(config.githubApp, null);
    });
    await t.step("GITHUB_TOKEN is kept beside an App", () => {
      const config = load({
        GITHUB_TOKEN: "ghp_abc",
        GITHUB_APP_ID: "42",
        GITHUB_APP_PRIVATE_KEY_PATH: "/etc/hookgate/app.pem",
      });
      assert.equal(config.githubToken, "ghp_abc");
      assert.deepEqual(config.githubApp, {
        id: "42",
        key: { path: "/etc/hookgate/app.pem" },
      });
    });
  },
);

Deno.test(
  "loadConfig() names the App variable that is missing, bad or doubled, never the key",
  SANITIZE,
  async (t) => {
    const table: [string, Record<string, string>, RegExp][] = [
      [
        "an ID without a key",
        { GITHUB_APP_ID: "42" },
        /^GITHUB_APP_ID is set without a private key: set GITHUB_APP_PRIVATE_KEY_PATH/,
      ],
      [
        "a key without an ID",
        { GITHUB_APP_PRIVATE_KEY: KEY_TEXT },
        /^GITHUB_APP_ID is not set, but GITHUB_APP_PRIVATE_KEY is/,
      ],
      [
        "a key path without an ID",
        { GITHUB_APP_PRIVATE_KEY_PATH: "app.pem" },
        /^GITHUB_APP_ID is not set, but GITHUB_APP_PRIVATE_KEY_PATH is/,
      ],
      [
        "both key variables",
        {
          GITHUB_APP_ID: "42",
          GITHUB_APP_PRIVATE_KEY: KEY_TEXT,
          GITHUB_APP_PRIVATE_KEY_PATH: "app.pem",
        },
        /^GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are both set/,
      ],
      [
        "a word as ID",
        { GITHUB_APP_ID: "my-app", GITHUB_APP_PRIVATE_KEY: KEY_TEXT },
        /^GITHUB_APP_ID must be the App's numeric ID or its client ID .*"my-app"$/,
      ],
      [
        "zero",
        { GITHUB_APP_ID: "0", GITHUB_APP_PRIVATE_KEY: KEY_TEXT },
        /^GITHUB_APP_ID must be/,
      ],
      ["a leading zero", {
        GITHUB_APP_ID: "0123",
        GITHUB_APP_PRIVATE_KEY: KEY_TEXT,
      }, /^GITHUB_APP_ID must be/],
      [
        "a float",
        { GITHUB_APP_ID: "1.5", GITHUB_APP_PRIVATE_KEY: KEY_TEXT },
        /^GITHUB_APP_ID must be/,
      ],
      ["a short client ID", {
        GITHUB_APP_ID: "Iv1.abc",
        GITHUB_APP_PRIVATE_KEY: KEY_TEXT,
      }, /^GITHUB_APP_ID must be/],
      ["an OAuth App client ID", {
        GITHUB_APP_ID: "Ov23liAbCdEf01234567",
        GITHUB_APP_PRIVATE_KEY: KEY_TEXT,
      }, /^GITHUB_APP_ID must be/],
      [
        "the key pasted as ID",
        { GITHUB_APP_ID: KEY_TEXT, GITHUB_APP_PRIVATE_KEY_PATH: "app.pem" },
        /^GITHUB_APP_ID must be .*: current value is \d+ characters long \(not shown\)$/,
      ],
    ];
    for (const [name, env, expected] of table) {
      await t.step(name, () => {
        const problems = problemsOf({ GITHUB_WEBHOOK_SECRET: SECRET, ...env });
        assert.equal(problems.length, 1, problems.join("\n"));
        assert.match(problems[0]!, expected);
        assert.ok(!problems[0]!.includes("MIIE"), problems[0]);
        assert.ok(!problems[0]!.includes("secretbits"), problems[0]);
      });
    }
  },
);

Deno.test("loadConfig() reads GITHUB_API_URL", SANITIZE, async (t) => {
  const good = [
    "https://api.github.com",
    "https://ghe.example.com/api/v3",
    "http://127.0.0.1:8080",
    "http://localhost:9000/api/v3",
    "http://[::1]:8080",
  ];
  for (const url of good) {
    await t.step(`${url} is kept as given`, () => {
      assert.equal(load({ GITHUB_API_URL: ` ${url} ` }).githubApiUrl, url);
    });
  }
  const bad: [string, RegExp][] = [
    ["http://api.example.com", /^GITHUB_API_URL must be an https URL/],
    ["ftp://api.example.com", /^GITHUB_API_URL must be an https URL/],
    ["api.github.com", /^GITHUB_API_URL must be an http\(s\) URL/],
    [
      "https://user:pw@ghe.example.com",
      /^GITHUB_API_URL must not carry credentials/,
    ],
    [
      "https://ghe.example.com/?q=1",
      /^GITHUB_API_URL must not carry credentials/,
    ],
  ];
  for (const [url, expected] of bad) {
    await t.step(`${url} is refused`, () => {
      const problems = problemsOf({
        GITHUB_WEBHOOK_SECRET: SECRET,
        GITHUB_API_URL: url,
      });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, expected);
      assert.ok(!problems[0]!.includes("pw"));
    });
  }
});

Deno.test(
  "loadConfig() reads KV_PATH and DENO_DEPLOYMENT_ID",
  SANITIZE,
  async (t) => {
    await t.step(
      "KV_PATH=:memory:",
      () => assert.equal(load({ KV_PATH: ":memory:" }).kvPath, ":memory:"),
    );
    await t.step("KV_PATH under ./data", () => {
      assert.equal(load({ KV_PATH: " ./data/x.kv " }).kvPath, "./data/x.kv");
    });
    await t.step("KV_PATH empty is the default", () => {
      assert.equal(load({ KV_PATH: "" }).kvPath, "./data/hookgate.kv");
    });
    await t.step("DENO_DEPLOYMENT_ID uses the managed KV", () => {
      const config = load({ DENO_DEPLOYMENT_ID: "abc123" });
      assert.equal(config.deploy, true);
      assert.equal(config.kvPath, "");
    });
    await t.step("DENO_DEPLOYMENT_ID with an explicit KV_PATH keeps it", () => {
      const config = load({
        DENO_DEPLOYMENT_ID: "abc123",
        KV_PATH: "https://kv.example/db",
      });
      assert.equal(config.deploy, true);
      assert.equal(config.kvPath, "https://kv.example/db");
    });
    await t.step("DENO_DEPLOYMENT_ID empty is not Deploy", () => {
      const config = load({ DENO_DEPLOYMENT_ID: "" });
      assert.equal(config.deploy, false);
      assert.equal(config.kvPath, "./data/hookgate.kv");
    });
  },
);

Deno.test(
  "loadConfig() reports every problem at once in ConfigError.problems",
  SANITIZE,
  () => {
    let caught: unknown;
    try {
      loadConfig({
        PORT: "http",
        WEBHOOK_PATH: "hook",
        MAX_BODY_BYTES: "25MB",
        IP_ALLOWLIST: "yes",
        EXTRA_ALLOWED_CIDRS: "1.2.3.4/40",
        TRUSTED_PROXIES: "proxy",
        GITHUB_META_URL: "meta",
        GITHUB_META_REFRESH_SECONDS: "0",
        HANDLER_TIMEOUT_MS: "-5",
        MAX_CONCURRENCY: "1.5",
        BODY_TIMEOUT_MS: "1e3",
        MAX_ATTEMPTS: "many",
        DELIVERY_TTL_DAYS: "week",
        LOG_LEVEL: "loud",
        LOG_FORMAT: "xml",
        GITHUB_APP_ID: "app",
        GITHUB_API_URL: "http://api.example.com",
      });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigError);
    assert.ok(caught instanceof Error);
    assert.equal(caught.name, "ConfigError");
    const named = caught.problems.map((p) => p.split(" ")[0]);
    assert.deepEqual(named.toSorted(), [
      "BODY_TIMEOUT_MS",
      "DELIVERY_TTL_DAYS",
      "EXTRA_ALLOWED_CIDRS",
      "GITHUB_API_URL",
      "GITHUB_APP_ID",
      "GITHUB_APP_ID",
      "GITHUB_META_REFRESH_SECONDS",
      "GITHUB_META_URL",
      "GITHUB_WEBHOOK_SECRET",
      "HANDLER_TIMEOUT_MS",
      "IP_ALLOWLIST",
      "LOG_FORMAT",
      "LOG_LEVEL",
      "MAX_ATTEMPTS",
      "MAX_BODY_BYTES",
      "MAX_CONCURRENCY",
      "PORT",
      "TRUSTED_PROXIES",
      "WEBHOOK_PATH",
    ]);
    assert.equal(
      caught.message,
      `Cannot start:\n  ${caught.problems.join("\n  ")}`,
    );
  },
);

Deno.test("loadConfig() never echoes the secret in a problem", SANITIZE, () => {
  let caught: unknown;
  try {
    loadConfig({ GITHUB_WEBHOOK_SECRET: "very-secret-value", PORT: "x" });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError);
  assert.ok(!caught.message.includes("very-secret-value"));
});

Deno.test(
  "loadConfig() reads RECONCILE_INTERVAL_MINUTES: unset is off, else a positive integer",
  SANITIZE,
  () => {
    const base = { GITHUB_WEBHOOK_SECRET: SECRET };
    assert.equal(loadConfig(base).reconcileIntervalMinutes, null);
    assert.equal(
      loadConfig({ ...base, RECONCILE_INTERVAL_MINUTES: "30" })
        .reconcileIntervalMinutes,
      30,
    );
    for (const bad of ["0", "-5", "1.5", "abc", "35792"]) {
      const problems = problemsOf({ ...base, RECONCILE_INTERVAL_MINUTES: bad });
      assert.ok(
        problems.some((p) =>
          p.startsWith("RECONCILE_INTERVAL_MINUTES must be a positive integer")
        ),
        `${bad}: ${problems}`,
      );
    }
    assert.ok(
      (CONFIG_VARIABLES as readonly string[]).includes(
        "RECONCILE_INTERVAL_MINUTES",
      ),
    );
  },
);

Deno.test(
  "loadConfig() reads FORWARD_URLS (http(s) URLs, one host each) and FORWARD_SECRET (16 characters, never shown)",
  SANITIZE,
  () => {
    const base = { GITHUB_WEBHOOK_SECRET: SECRET };
    assert.deepEqual(loadConfig(base).forwardUrls, []);
    assert.equal(loadConfig(base).forwardSecret, undefined);
    const config = loadConfig({
      ...base,
      FORWARD_URLS:
        " https://staging.example.com/webhook ,http://10.0.0.5:8000/hook,",
      FORWARD_SECRET: "a forward secret of some length",
    });
    assert.deepEqual(config.forwardUrls, [
      "https://staging.example.com/webhook",
      "http://10.0.0.5:8000/hook",
    ]);
    assert.equal(config.forwardSecret, "a forward secret of some length");
    for (
      const [bad, message] of [
        [
          "ftp://files.example.com/x",
          /FORWARD_URLS item 1 must be an http\(s\) URL.*scheme is ftp:/,
        ],
        [
          "https://ok.example.com, not a url",
          /FORWARD_URLS item 2 must be an http\(s\) URL/,
        ],
        [
          "http://a.test/one,http://a.test/two",
          /FORWARD_URLS item 2 has the host of an earlier one \(a\.test\)/,
        ],
        [
          "https://fwuser:Passw0rdInUrl@b.test/hook",
          /FORWARD_URLS item 1 must not hold a user or password/,
        ],
      ] as const
    ) {
      const problems = problemsOf({ ...base, FORWARD_URLS: bad });
      assert.ok(problems.some((p) => message.test(p)), `${bad}: ${problems}`);
      assert.ok(!problems.join("\n").includes("Passw0rdInUrl"));
    }
    const short = problemsOf({ ...base, FORWARD_SECRET: "short-forward" });
    assert.ok(
      short.some((p) => p.startsWith("FORWARD_SECRET is shorter than 16")),
    );
    assert.ok(!short.join("\n").includes("short-forward"));
    for (const name of ["FORWARD_URLS", "FORWARD_SECRET"]) {
      assert.ok((CONFIG_VARIABLES as readonly string[]).includes(name), name);
    }
    // A script never gets the forward secret.
    assert.ok(
      problemsOf({ ...base, HOOKS_ENV: "FORWARD_SECRET" }).some((p) =>
        p.includes("FORWARD_SECRET")
      ),
    );
  },
);

Deno.test(
  "CONFIG_VARIABLES lists every variable of the contract",
  SANITIZE,
  () => {
    const contract = [
      "GITHUB_WEBHOOK_SECRET",
      "GITHUB_WEBHOOK_SECRET_PREVIOUS",
      "PORT",
      "HOST",
      "WEBHOOK_PATH",
      "MAX_BODY_BYTES",
      "IP_ALLOWLIST",
      "EXTRA_ALLOWED_CIDRS",
      "TRUSTED_PROXIES",
      "GITHUB_META_URL",
      "GITHUB_META_REFRESH_SECONDS",
      "GITHUB_TOKEN",
      "GITHUB_APP_ID",
      "GITHUB_APP_PRIVATE_KEY",
      "GITHUB_APP_PRIVATE_KEY_PATH",
      "GITHUB_API_URL",
      "KV_PATH",
      "ADMIN_TOKEN",
      "HANDLER_TIMEOUT_MS",
      "MAX_CONCURRENCY",
      "BODY_TIMEOUT_MS",
      "MAX_ATTEMPTS",
      "DELIVERY_TTL_DAYS",
      "LOG_LEVEL",
      "LOG_FORMAT",
    ];
    for (const name of contract) {
      assert.ok((CONFIG_VARIABLES as readonly string[]).includes(name), name);
    }
    assert.ok(
      (CONFIG_VARIABLES as readonly string[]).includes("DENO_DEPLOYMENT_ID"),
    );
  },
);

Deno.test(
  "parseDotenv() reads every supported line form",
  SANITIZE,
  async (t) => {
    const table: [string, string, Record<string, string>][] = [
      ["a plain pair", "PORT=9000", { PORT: "9000" }],
      ["spaces around =", "  PORT  =  9000  ", { PORT: "9000" }],
      ["export prefix", "export HOST=::", { HOST: "::" }],
      ["a comment line", "# PORT=1\nHOST=x", { HOST: "x" }],
      ["an indented comment", "   # PORT=1", {}],
      ["blank lines", "\n\n  \nA=1\n\n", { A: "1" }],
      ["CRLF line ends", "A=1\r\nB=2\r\n", { A: "1", B: "2" }],
      ["an empty value", "A=", { A: "" }],
      ["= inside the value", "A=b=c", { A: "b=c" }],
      ["a trailing comment", "A=value # note", { A: "value" }],
      ["# without a space before it", "A=abc#def", { A: "abc#def" }],
      ["single quotes, kept literally", "A='a b \\n # c'", {
        A: "a b \\n # c",
      }],
      ['double quotes with \\n and \\"', 'A="line1\\nline2 \\"q\\""', {
        A: 'line1\nline2 "q"',
      }],
      ["double quotes keep #", 'A="a # b"', { A: "a # b" }],
      ["a lone quote", 'A="', { A: '"' }],
      ["empty quotes", "A=''\nB=\"\"", { A: "", B: "" }],
      ["later lines win", "A=1\nA=2", { A: "2" }],
      ["lines without = are skipped", "JUSTANAME\nA=1", { A: "1" }],
      ["names starting with a digit are skipped", "1A=x\n_B=y", { _B: "y" }],
      ["names with dashes are skipped", "A-B=x", {}],
      [
        "a secret with quotes and spaces",
        'GITHUB_WEBHOOK_SECRET="It\'s a Secret to Everybody"',
        {
          GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
        },
      ],
    ];
    for (const [name, text, expected] of table) {
      await t.step(name, () => assert.deepEqual(parseDotenv(text), expected));
    }
  },
);

Deno.test({
  ...SANITIZE,
  // Regression test (found by review).
  name: "parseDotenv() strips a comment after a quoted value",
  fn: () => {
    assert.deepEqual(parseDotenv("A=\"a b\" # c\nB='x y' # c"), {
      A: "a b",
      B: "x y",
    });
  },
});

Deno.test(
  "mergeEnv() lets the real environment win over .env",
  SANITIZE,
  async (t) => {
    await t.step("real wins", () => {
      assert.deepEqual(mergeEnv({ PORT: "1" }, { PORT: "2", HOST: "::" }), {
        PORT: "1",
        HOST: "::",
      });
    });
    await t.step("an undefined real value keeps the .env value", () => {
      assert.deepEqual(mergeEnv({ PORT: undefined }, { PORT: "2" }), {
        PORT: "2",
      });
    });
    await t.step("a real empty value is still set", () => {
      assert.deepEqual(mergeEnv({ ADMIN_TOKEN: "" }, { ADMIN_TOKEN: "t" }), {
        ADMIN_TOKEN: "",
      });
    });
    await t.step("inputs are not modified", () => {
      const real = { A: "1" };
      const dotenv = { B: "2" };
      mergeEnv(real, dotenv);
      assert.deepEqual([real, dotenv], [{ A: "1" }, { B: "2" }]);
    });
  },
);

/** Runs `fn` with hookgate variables set in the real environment, then restores them. */
async function withEnv(
  vars: Record<string, string | undefined>,
  fn: () => Promise<void>,
): Promise<void> {
  const saved = new Map(
    Object.keys(vars).map((name) => [name, Deno.env.get(name)]),
  );
  const apply = (name: string, value: string | undefined) => {
    if (value === undefined) Deno.env.delete(name);
    else Deno.env.set(name, value);
  };
  try {
    for (const [name, value] of Object.entries(vars)) apply(name, value);
    await fn();
  } finally {
    for (const [name, value] of saved) apply(name, value);
  }
}

const ENV_GRANTED =
  Deno.permissions.querySync({ name: "env" }).state === "granted";
const READ_GRANTED =
  Deno.permissions.querySync({ name: "read" }).state === "granted";
const WRITE_GRANTED =
  Deno.permissions.querySync({ name: "write" }).state === "granted";

Deno.test({
  ...SANITIZE,
  name: "readEnvironment() reads a .env file under the real environment",
  ignore: !ENV_GRANTED || !READ_GRANTED || !WRITE_GRANTED,
  fn: async () => {
    const path = await Deno.makeTempFile({ suffix: ".env" });
    try {
      await Deno.writeTextFile(
        path,
        "GITHUB_WEBHOOK_SECRET=from-file\nLOG_FORMAT=pretty\nHOOKGATE_NOT_OURS=x\nPORT=1\n",
      );
      const vars = {
        PORT: "9001",
        GITHUB_WEBHOOK_SECRET: undefined,
        LOG_FORMAT: undefined,
      };
      await withEnv(vars, async () => {
        const env = await readEnvironment(path);
        assert.equal(env.PORT, "9001");
        assert.equal(env.LOG_FORMAT, "pretty");
        assert.equal(env.GITHUB_WEBHOOK_SECRET, "from-file");
        // A .env line outside CONFIG_VARIABLES is passed through but never read from Deno.env.
        assert.equal(env.HOOKGATE_NOT_OURS, "x");
      });
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  ...SANITIZE,
  name:
    "readEnvironment() reads only CONFIG_VARIABLES from Deno.env when no .env exists",
  ignore: !ENV_GRANTED || !READ_GRANTED,
  fn: async () => {
    await withEnv(
      { MAX_ATTEMPTS: "3", HOOKGATE_TEST_OTHER: "nope" },
      async () => {
        const env = await readEnvironment("/nonexistent/hookgate/.env");
        assert.equal(env.MAX_ATTEMPTS, "3");
        assert.equal(env.HOOKGATE_TEST_OTHER, undefined);
        for (const name of Object.keys(env)) {
          assert.ok(
            (CONFIG_VARIABLES as readonly string[]).includes(name),
            name,
          );
        }
      },
    );
  },
});

Deno.test({
  ...SANITIZE,
  name: "readEnvironment() treats variables it may not read as unset",
  permissions: { env: ["PORT"], read: false },
  ignore: !ENV_GRANTED,
  fn: async () => {
    // --allow-read is denied too: the .env file is skipped, not an error.
    const env = await readEnvironment(import.meta.filename ?? "config_test.ts");
    assert.equal(env.PORT, Deno.env.get("PORT"));
    assert.equal(env.GITHUB_WEBHOOK_SECRET, undefined);
    assert.equal(env.MAX_ATTEMPTS, undefined);
  },
});

Deno.test({
  ...SANITIZE,
  name: "readEnvironment() rethrows a .env read error other than not-found",
  ignore: !READ_GRANTED,
  fn: async () => {
    // A directory cannot be read as text.
    const dir = new URL(".", import.meta.url);
    await assert.rejects(
      () => readEnvironment(dir.pathname),
      (err: unknown) => {
        return err instanceof Error && !(err instanceof Deno.errors.NotFound);
      },
    );
  },
});

Deno.test("loadConfig() checks the script hook variables", () => {
  const config = loadConfig({
    GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
    HOOKS_DIR: "./hooks",
    HOOKS_ENV: "DEPLOY_HOST, SSH_AUTH_SOCK",
    SERIALIZE_BY: "branch",
  });
  assert.equal(config.hooksDir, "./hooks");
  assert.deepEqual(config.hooksEnv, ["DEPLOY_HOST", "SSH_AUTH_SOCK"]);
  assert.equal(config.serializeBy, "branch");
  assert.throws(
    () =>
      loadConfig({
        GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
        HOOKS_DIR: "/srv/my hooks",
        HOOKS_ENV: "ADMIN_TOKEN,GITHUB_TOKEN,HOOKGATE_X,1BAD",
        SERIALIZE_BY: "org",
      }),
    (err: Error) => {
      for (
        const text of [
          "HOOKS_DIR must be a path without spaces",
          "HOOKS_ENV holds ADMIN_TOKEN: secrets are never passed",
          "HOOKS_ENV holds GITHUB_TOKEN: hookgate sets it",
          "HOOKS_ENV holds HOOKGATE_X",
          'HOOKS_ENV holds "1BAD"',
          "SERIALIZE_BY",
        ]
      ) assert.ok(err.message.includes(text), `${text} in ${err.message}`);
      return true;
    },
  );
});
