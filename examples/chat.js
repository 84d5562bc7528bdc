#!/usr/bin/gjs
// SPDX-License-Identifier: MIT
// A desktop client of bankr-llmd in GJS (Gio): shows the credit balance,
// streams a chat answer as it arrives, and follows balance changes.
//
//     gjs examples/chat.js [-m MODEL] [--watch SECONDS] [--changes N] PROMPT...
//
// The same steps as chat-gio.py: a Gio.DBusProxy for bot.bankr.LLM1.Credits
// (it activates the service and follows PropertiesChanged), a subscription
// to the bot.bankr.LLM1.Request signals made before Chat.Start (they are
// unicast to this connection), then Chat.Start and its Delta pieces until
// Finished or Failed; with --watch, balance changes for that long.
const { Gio, GLib } = imports.gi;

const NAME = 'bot.bankr.LLM1';
const PATH = '/bot/bankr/LLM1';

let model = 'claude-haiku-4.5', watch = 0, maxChanges = 0;
const words = [];
for (let i = 0; i < ARGV.length; i++) {
    const a = ARGV[i];
    if (a === '-m' || a === '--model') model = ARGV[++i];
    else if (a === '--watch') watch = Number(ARGV[++i]);
    else if (a === '--changes') maxChanges = Number(ARGV[++i]);
    else words.push(a);
}
if (words.length === 0 || !model || !(watch >= 0) || !(maxChanges >= 0)) {
    printerr('Usage: gjs chat.js [-m MODEL] [--watch SECONDS] [--changes N] PROMPT...');
    imports.system.exit(2);
}

const print_ = text => { print(text); };
const bus = Gio.bus_get_sync(Gio.BusType.SESSION, null);
const loop = GLib.MainLoop.new(null, false);
let code = 0, request = null, changes = 0, answering = true;
const early = [];

// 1. Credits: cached properties, kept current by PropertiesChanged.
const credits = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, null, NAME, PATH, `${NAME}.Credits`, null);
function showBalance(prefix) {
    const balance = credits.get_cached_property('Balance');
    const state = credits.get_cached_property('State');
    if (!balance || !state)
        print_(`${prefix}: unknown (is bankr-llmd running?)`);
    else
        print_(`${prefix}: $${balance.unpack().toFixed(2)} (${state.unpack()})`);
}
showBalance('Balance');
credits.connect('g-properties-changed', (proxy, changed) => {
    const keys = Object.keys(changed.deepUnpack());
    if (!keys.includes('Balance') && !keys.includes('State'))
        return;
    showBalance('Balance changed');
    changes++;
    if (!answering && maxChanges && changes >= maxChanges)
        loop.quit();
});

function answered() {
    answering = false;
    if (watch <= 0 || (maxChanges && changes >= maxChanges))
        loop.quit();
    else
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, watch * 1000, () => { loop.quit(); return GLib.SOURCE_REMOVE; });
}

// 2. Request signals, subscribed before Start.
function onRequestSignal(conn, sender, path, iface, signal, params) {
    if (request === null) {
        early.push([path, signal, params]);
        return;
    }
    if (path !== request)
        return;
    if (signal === 'Delta') {
        // print() adds a newline; write the piece as it is.
        stdout.write_all(new TextEncoder().encode(params.deepUnpack()[0]), null);
        stdout.flush(null);
    } else if (signal === 'Finished') {
        const info = params.recursiveUnpack()[0];
        print_(`\n[${info.model}: ${info.input_tokens} tokens in, ${info.output_tokens} out, ` +
               `$${(info.cost_usd || 0).toFixed(6)}]`);
        answered();
    } else if (signal === 'Failed') {
        const [name, message] = params.deepUnpack();
        printerr(`\nFailed: ${message} (${name})`);
        code = 1;
        answered();
    }
}
const stdout = new Gio.DataOutputStream({
    base_stream: new Gio.UnixOutputStream({ fd: 1, close_fd: false }),
});
bus.signal_subscribe(credits.get_name_owner(), `${NAME}.Request`, null, null, null,
    Gio.DBusSignalFlags.NONE, onRequestSignal);

// 3. Start the request: messages a(ss), options a{sv}.
try {
    const reply = bus.call_sync(NAME, PATH, `${NAME}.Chat`, 'Start',
        new GLib.Variant('(sa(ss)a{sv})', [model, [['user', words.join(' ')]], {}]),
        new GLib.VariantType('(o)'), Gio.DBusCallFlags.NONE, -1, null);
    request = reply.deepUnpack()[0];
} catch (e) {
    printerr(`Chat.Start failed: ${e.message}`);
    imports.system.exit(1);
}
for (const [path, signal, params] of early.splice(0))
    onRequestSignal(bus, null, path, `${NAME}.Request`, signal, params);

loop.run();
imports.system.exit(code);
