#!/bin/sh
# SPDX-License-Identifier: MIT
# bankr-llmd from the shell with busctl and gdbus: the balance, one chat
# answer (Chat.Complete; streaming needs a program of its own, since the
# Delta signals go to the connection that called Chat.Start), and the
# balance again.
#
#     examples/chat.sh [MODEL] PROMPT
#
# To watch every change the service announces, in another terminal:
#     gdbus monitor --session --dest bot.bankr.LLM1 --object-path /bot/bankr/LLM1
set -eu

if [ $# -eq 2 ]; then
        model=$1; prompt=$2
elif [ $# -eq 1 ]; then
        model=claude-haiku-4.5; prompt=$1
else
        echo "Usage: $0 [MODEL] PROMPT" >&2
        exit 2
fi

bus="bot.bankr.LLM1"
obj="/bot/bankr/LLM1"

balance() {
        # busctl prints "d 12.5" and "s \"ok\""; keep the values.
        b=$(busctl --user get-property "$bus" "$obj" bot.bankr.LLM1.Credits Balance | cut -d' ' -f2)
        s=$(busctl --user get-property "$bus" "$obj" bot.bankr.LLM1.Credits State | cut -d' ' -f2 | tr -d '"')
        printf '%s: $%.2f (%s)\n' "$1" "$b" "$s"
}

balance "Balance"

# Chat.Complete(model s, messages a(ss), options a{sv}) -> (text s, info a{sv}).
# --json=short gives {"type":"sa{sv}","data":["text",{...}]}; python3 picks it apart.
busctl --user --json=short --timeout=600 call "$bus" "$obj" bot.bankr.LLM1.Chat Complete \
        'sa(ss)a{sv}' "$model" 1 user "$prompt" 1 max_tokens u 400 |
        python3 -c 'import json, sys
text, info = json.load(sys.stdin)["data"]
print(text)
print("[%s: %d tokens in, %d out]" % (info["model"]["data"], info["input_tokens"]["data"], info["output_tokens"]["data"]))'

# The same with gdbus (GVariant text): the number of requests in flight.
gdbus call --session --dest "$bus" --object-path "$obj" \
        --method org.freedesktop.DBus.Properties.Get bot.bankr.LLM1.Chat ActiveRequests

balance "Balance now"
