'use strict';
/**
 * Drives the official amazon-ivs-chat-messaging SDK against a running IVS Chat sandbox, so
 * tests/test_js_sdk.py can check that the sandbox is indistinguishable from IVS to that SDK.
 *
 * Usage: node sdk_scenarios.js <scenario> '<config JSON>'
 *   config.url       messaging endpoint (ws://127.0.0.1:PORT), passed to the SDK as regionOrUrl
 *   config.tokenUrl  GET <tokenUrl>/<userId> answers a fresh ChatToken minted by the sandbox
 *   config.stepMs    longest wait for any single thing the SDK should report
 *   config.budgetMs  longest the whole scenario may take
 * Prints one JSON object per line for everything the SDK reports (room events, tokenProvider
 * calls, promise results), then {"type":"done"}; on failure {"type":"failed"} and exit code 1.
 */

// Node 20 has no global WebSocket without a flag; `ws` gives every Node version the same one.
globalThis.WebSocket = require('ws');
const {
  ChatRoom, DeleteMessageRequest, DisconnectUserRequest, SendMessageRequest,
} = require('amazon-ivs-chat-messaging');

const [scenarioName, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig || '{}');
const STEP_MS = config.stepMs || 5000;

// -- transcript: what the SDK reported, printed as it happens -----------------------------------
const transcript = [];
const waiters = new Set();

function record(entry) {
  transcript.push(entry);
  process.stdout.write(`${JSON.stringify(entry)}\n`);
  for (const waiter of [...waiters]) waiter.check();
}

function entries(user, type) {
  return transcript.filter((e) => e.user === user && e.type === type);
}

/** Resolves once `predicate()` holds; re-checked on every transcript entry, never by polling. */
function until(label, predicate, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const waiter = {
      check() {
        if (predicate()) {
          finish();
          resolve();
        }
      },
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`timed out after ${ms} ms waiting for ${label}`));
    }, ms);
    function finish() {
      clearTimeout(timer);
      waiters.delete(waiter);
    }
    waiters.add(waiter);
    waiter.check();
  });
}

/** Races an SDK promise against STEP_MS: the SDK itself never times a request out. */
function bounded(label, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms waiting for ${label}`)), STEP_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// -- users --------------------------------------------------------------------------------------
const rooms = [];

/** A ChatRoom for `user` whose tokenProvider asks the test's token endpoint, as an app backend would. */
function join(user) {
  let calls = 0;
  const room = new ChatRoom({
    regionOrUrl: config.url,
    tokenProvider: async () => {
      calls += 1;
      record({ user, type: 'tokenRequest', n: calls });
      const response = await fetch(`${config.tokenUrl}/${encodeURIComponent(user)}`);
      if (!response.ok) throw new Error(`token endpoint answered HTTP ${response.status}`);
      return response.json();
    },
  });
  room.logLevel = 'error'; // read when each connection is created, so set before connect()
  room.addListener('connecting', () => record({ user, type: 'connecting' }));
  room.addListener('connect', () => record({ user, type: 'connect' }));
  room.addListener('disconnect', (reason) => record({ user, type: 'disconnect', reason }));
  room.addListener('message', (message) => record({ user, type: 'message', message }));
  room.addListener('event', (event) => record({ user, type: 'event', event }));
  room.addListener('messageDelete', (event) => record({ user, type: 'messageDelete', event }));
  room.addListener('userDisconnect', (event) => record({ user, type: 'userDisconnect', event }));
  rooms.push(room);
  room.connect();
  return room;
}

function connected(...users) {
  return until(`${users.join(', ')} to connect`, () => users.every((u) => entries(u, 'connect').length > 0));
}

/** Runs one SDK request; records how its promise settled. A ChatError rejection is an answer, not a failure. */
async function request(user, op, req, call) {
  try {
    const value = await bounded(`${op} by ${user}`, call(req));
    record({ user, type: 'resolved', op, requestId: req.requestId, value });
    return value;
  } catch (error) {
    if (error instanceof Error) throw error; // timed out, or the SDK refused to send
    record({ user, type: 'rejected', op, requestId: req.requestId, error });
    return null;
  }
}

function send(room, user, content, attributes) {
  return request(user, 'sendMessage', new SendMessageRequest(content, attributes), (r) => room.sendMessage(r));
}

function received(user, messageId) {
  return until(`${user} to receive message ${messageId}`,
    () => entries(user, 'message').some((e) => e.message.id === messageId));
}

/** Paces messages below the room's rate limit; nothing waits on it for an outcome. */
function pause(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

// -- scenarios ----------------------------------------------------------------------------------
const scenarios = {
  async connect() {
    const alice = join('alice');
    await connected('alice');
    alice.disconnect();
  },

  async chat() {
    const alice = join('alice');
    const bob = join('bob');
    await connected('alice', 'bob');
    const fromAlice = await send(alice, 'alice', 'hello bob', { color: 'red' });
    await received('bob', fromAlice.id);
    const fromBob = await send(bob, 'bob', 'hi alice');
    await received('alice', fromBob.id);
    await received('bob', fromBob.id);
  },

  async delete() {
    const alice = join('alice');
    const bob = join('bob');
    await connected('alice', 'bob');
    const message = await send(alice, 'alice', 'buy cheap watches');
    await received('bob', message.id);
    await request('bob', 'deleteMessage', new DeleteMessageRequest(message.id, 'spam'), (r) => bob.deleteMessage(r));
    await until('alice to see the deletion', () => entries('alice', 'messageDelete').length > 0);
  },

  async disconnect() {
    join('alice');
    const bob = join('bob');
    await connected('alice', 'bob');
    await request('bob', 'disconnectUser', new DisconnectUserRequest('alice', 'be nice'), (r) => bob.disconnectUser(r));
    await until('alice to be disconnected', () => entries('alice', 'disconnect').length > 0);
    await send(bob, 'bob', 'still here');
  },

  async errors() {
    const alice = join('alice');
    const bob = join('bob');
    await connected('alice', 'bob');
    await send(alice, 'alice', 'may I speak?');
    await send(bob, 'bob', 'x'.repeat(config.maximumMessageLength + 1));
    // Code points, not UTF-16 units: each emoji is 2 units in JS but 1 character to IVS.
    const atLimit = await send(bob, 'bob', '\u{1F600}'.repeat(config.maximumMessageLength));
    await received('alice', atLimit.id);
  },

  async rotation() {
    const alice = join('alice'); // short-lived tokens: the SDK keeps opening a new connection
    const bob = join('bob');
    await connected('alice', 'bob');
    const byUser = { alice, bob };
    let after = config.messagesAfterRotations;
    for (let i = 0; after > 0; i += 1) {
      if (i >= config.maxMessages) {
        throw new Error(`alice rotated only ${entries('alice', 'tokenRequest').length - 1} times`);
      }
      const sender = i % 2 === 0 ? 'bob' : 'alice';
      const message = await send(byUser[sender], sender, `message ${i}`);
      await received('alice', message.id);
      await received('bob', message.id);
      if (entries('alice', 'tokenRequest').length > config.rotations) after -= 1;
      await pause(config.paceMs);
    }
  },

  async expiry() {
    const alice = join('alice'); // every token's session lasts only a couple of seconds
    await connected('alice');
    await until('alice to reconnect after her session expires', () => entries('alice', 'connect').length >= 2,
      config.sessionMs + STEP_MS);
    await send(alice, 'alice', 'back again');
  },
};

// -- main ---------------------------------------------------------------------------------------
function finish(entry, code) {
  process.stdout.write(`${JSON.stringify(entry)}\n`, () => process.exit(code));
}

async function main() {
  const scenario = scenarios[scenarioName];
  if (!scenario) throw new Error(`unknown scenario ${scenarioName}; known: ${Object.keys(scenarios).join(', ')}`);
  const budget = setTimeout(() => finish({ type: 'failed', error: `scenario exceeded ${config.budgetMs} ms` }, 1),
    config.budgetMs || 30000);
  await scenario();
  clearTimeout(budget);
  for (const room of rooms) if (room.state !== 'disconnected') room.disconnect();
}

main().then(
  () => finish({ type: 'done' }, 0),
  (error) => finish({ type: 'failed', error: String(error && error.stack ? error.stack : error) }, 1),
);
