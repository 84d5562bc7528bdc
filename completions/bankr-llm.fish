# SPDX-License-Identifier: MIT
# fish completion for bankr-llm. Model ids come from one D-Bus property read
# of the list bankr-llmd holds, with auto-start off: a completion never starts
# the service and never reaches the network.

function __bankr_llm_models
    busctl --user --auto-start=no --json=short call bot.bankr.LLM1 /bot/bankr/LLM1 \
        org.freedesktop.DBus.Properties Get ss bot.bankr.LLM1.Models Models 2>/dev/null |
        string match -ra '"id":\{"type":"s","data":"[^"\\\\]*"' |
        string replace -r '.*"data":"(.*)"$' '$1'
end

set -l verbs status key config login credits chat models image setup claude opencode token endpoint usage budget
complete -c bankr-llm -f
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -s h -l help -d 'Show help'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -l version -d 'Show the version'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -l no-ask-password -d 'Never let polkit ask for a password'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a status -d 'Show the gateway, key source and version'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a key -d 'Set, clear, import, validate or reveal the key'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a config -d 'Get or set llmKey, apiKey, llmUrl, apiUrl'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a login -d 'Store keys (bankr login compatible)'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a credits -d 'Credit balance, add credits, auto top-up'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a chat -d 'Ask a model and stream the answer'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a models -d 'List the gateway models'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a image -d 'Generate an image and write it to a file'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a setup -d 'Show or install the config of a tool'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a claude -d 'Run Claude Code through the gateway'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a opencode -d 'Run OpenCode through the gateway'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a token -d 'Mint a token for the local endpoint'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a endpoint -d 'Show the local endpoint and its tokens'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a usage -d 'What each application spent'
complete -c bankr-llm -n "not __fish_seen_subcommand_from $verbs" -a budget -d 'How much each application may spend'

# --json[=short|pretty|off] and -j, where a verb prints data.
for v in status models chat image credits token endpoint usage budget
    complete -c bankr-llm -n "__fish_seen_subcommand_from $v" -s j -l json -a 'short pretty off' -d 'Print JSON'
end
complete -c bankr-llm -n "__fish_seen_subcommand_from models" -s r -l refresh -d 'Ask the gateway first'
complete -c bankr-llm -n "__fish_seen_subcommand_from models" -l zdr -d 'Only models with zero data retention'
complete -c bankr-llm -n "__fish_seen_subcommand_from models" -l private -d 'Only models on TEE compute'

complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -s m -l model -x -a '(__bankr_llm_models)' -d 'Model id'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -l fallback -x -a '(__bankr_llm_models)' -d 'Fallback model'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -s s -l system -x -d 'System prompt'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -l max-tokens -x -d 'Most tokens to generate'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -l temperature -x -d 'Sampling temperature'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -l api -x -a 'auto openai anthropic' -d 'Wire format'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -l usage -d 'Print tokens, cost and latency'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat image" -l privacy -x -a 'standard zdr private' -d 'Privacy tier'
complete -c bankr-llm -n "__fish_seen_subcommand_from chat" -l attach -r -F -d 'Send an image'
complete -c bankr-llm -n "__fish_seen_subcommand_from image" -s o -l output -r -F -d 'Where to write the image'
complete -c bankr-llm -n "__fish_seen_subcommand_from image" -s m -l model -x -a '(__bankr_llm_models)' -d 'Image model'
complete -c bankr-llm -n "__fish_seen_subcommand_from image" -s n -l count -x -a '1 2 3 4' -d 'How many images'
complete -c bankr-llm -n "__fish_seen_subcommand_from image" -l size -x -d 'Image size'
complete -c bankr-llm -n "__fish_seen_subcommand_from image" -l quality -x -d 'Image quality'
complete -c bankr-llm -n "__fish_seen_subcommand_from image" -l timeout -x -d 'Seconds to wait'

complete -c bankr-llm -n "__fish_seen_subcommand_from key; and not __fish_seen_subcommand_from set clear import status validate reveal" -a 'set clear import status validate reveal'
complete -c bankr-llm -n "__fish_seen_subcommand_from set clear" -l api -d 'The agent API key'
complete -c bankr-llm -n "__fish_seen_subcommand_from import" -l remove-plaintext -d 'Remove the keys from the file'

complete -c bankr-llm -n "__fish_seen_subcommand_from config; and not __fish_seen_subcommand_from get set" -a 'get set'
complete -c bankr-llm -n "__fish_seen_subcommand_from config; and __fish_seen_subcommand_from get set" -a 'llmKey apiKey llmUrl apiUrl'

complete -c bankr-llm -n "__fish_seen_subcommand_from login" -l llm-key -x -d 'LLM key'
complete -c bankr-llm -n "__fish_seen_subcommand_from login" -l api-key -x -d 'Agent API key'

complete -c bankr-llm -n "__fish_seen_subcommand_from credits; and not __fish_seen_subcommand_from add auto" -a 'add auto'
complete -c bankr-llm -n "__fish_seen_subcommand_from credits; and not __fish_seen_subcommand_from add auto" -s r -l refresh -d 'Ask the gateway now'
complete -c bankr-llm -n "__fish_seen_subcommand_from credits; and not __fish_seen_subcommand_from add auto" -s t -l threshold -x -d 'Warn below USD'
complete -c bankr-llm -n "__fish_seen_subcommand_from add" -l token -x -d 'Token to pay with'
complete -c bankr-llm -n "__fish_seen_subcommand_from add" -s y -l yes -d 'Do not ask'
complete -c bankr-llm -n "__fish_seen_subcommand_from auto" -l enable -d 'Turn auto top-up on'
complete -c bankr-llm -n "__fish_seen_subcommand_from auto" -l disable -d 'Turn it off'
complete -c bankr-llm -n "__fish_seen_subcommand_from auto" -l amount -x -d 'USD each time'
complete -c bankr-llm -n "__fish_seen_subcommand_from auto" -l threshold -x -d 'Buy below this'
complete -c bankr-llm -n "__fish_seen_subcommand_from auto" -l tokens -x -d 'Tokens to pay with'

complete -c bankr-llm -n "__fish_seen_subcommand_from setup; and not __fish_seen_subcommand_from openclaw opencode claude cursor" -a 'openclaw opencode claude cursor'
complete -c bankr-llm -n "__fish_seen_subcommand_from setup" -l install -d 'Write the config file'
complete -c bankr-llm -n "__fish_seen_subcommand_from setup" -l key -x -a 'endpoint env inline' -d 'How the tool authenticates'
complete -c bankr-llm -n "__fish_seen_subcommand_from setup" -l force -d 'Replace a file that is not strict JSON'

complete -c bankr-llm -n "__fish_seen_subcommand_from token" -s a -l app -x -a 'claude-code opencode openclaw cli' -d 'Who uses the token'
complete -c bankr-llm -n "__fish_seen_subcommand_from token" -s l -l lifetime -x -a 'connection expiring persistent' -d 'How long it lives'
complete -c bankr-llm -n "__fish_seen_subcommand_from token" -s t -l ttl -x -d 'Duration (90s, 30m, 12h, 7d)'
complete -c bankr-llm -n "__fish_seen_subcommand_from token" -s b -l budget -x -d 'Most USD it may spend'
complete -c bankr-llm -n "__fish_seen_subcommand_from token" -s m -l models -x -a '(__bankr_llm_models)' -d 'Allowed model ids'
complete -c bankr-llm -n "__fish_seen_subcommand_from token" -l openclaw-exec -d "Speak OpenClaw's exec protocol"
complete -c bankr-llm -n "__fish_seen_subcommand_from endpoint; and not __fish_seen_subcommand_from revoke" -a revoke -d 'Revoke a token by id'
complete -c bankr-llm -n "__fish_seen_subcommand_from usage; and not __fish_seen_subcommand_from recent" -a recent -d 'The last requests'
complete -c bankr-llm -n "__fish_seen_subcommand_from usage; and not __fish_seen_subcommand_from recent" -s b -l by -x -a 'app model day hour' -d 'Group by'
complete -c bankr-llm -n "__fish_seen_subcommand_from usage; and not __fish_seen_subcommand_from recent" -s s -l since -x -a 'today 1d 7d 30d' -d 'From when'
complete -c bankr-llm -n "__fish_seen_subcommand_from usage" -s a -l app -x -d 'Only this app'
complete -c bankr-llm -n "__fish_seen_subcommand_from recent" -s n -x -d 'How many records'
complete -c bankr-llm -n "__fish_seen_subcommand_from budget; and not __fish_seen_subcommand_from set clear" -a 'set clear'
