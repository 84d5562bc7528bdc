# bash completion for bankr-llm                          -*- shell-script -*-
# SPDX-License-Identifier: MIT
#
# Verbs, options, the four setup tools, and model ids for -m/--model and
# --fallback. The model ids are one D-Bus property read of the list
# bankr-llmd holds (Properties.Get of bot.bankr.LLM1.Models.Models; busctl
# get-property cannot turn auto-start off), with auto-start off: a
# completion never starts the service and never reaches the network.

_bankr_llm_model_ids() {
    busctl --user --auto-start=no --json=short call bot.bankr.LLM1 /bot/bankr/LLM1 \
        org.freedesktop.DBus.Properties Get ss bot.bankr.LLM1.Models Models 2>/dev/null |
        grep -o '"id":{"type":"s","data":"[^"\\]*"' | sed 's/.*"data":"//; s/"$//'
}

_bankr_llm() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev= i w verb= sub=
    local verbs="status key config login credits chat models image setup claude opencode token endpoint usage budget"
    local json_formats="short pretty off"
    local opts=

    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    # The first word that is not an option is the verb; the one after it,
    # for key/config/credits, the subcommand.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        [[ $w == -* || $w == = ]] && continue
        case ${COMP_WORDS[i - 1]} in
        -m | --model | -s | --system | --max-tokens | --temperature | --api | --fallback | --key | \
            --token | --amount | --threshold | --tokens | -t | --llm-key | --api-key | --privacy | --attach | \
            -o | --output | -n | --count | --size | --quality | --timeout | \
            -b | --by | --since | -a | --app | -l | --lifetime | --ttl | --budget | --models) continue ;;
        esac
        if [[ -z $verb ]]; then
            verb=$w
        elif [[ -z $sub ]]; then
            sub=$w
        fi
    done

    # claude and opencode pass every argument to the tool.
    [[ $verb == claude || $verb == opencode ]] && return 0

    # --json=FORMAT: bash splits at "=", so the word before may be "=".
    if [[ $cur == = && $prev == --json ]]; then
        COMPREPLY=($json_formats)
        return 0
    fi
    if [[ $prev == = && ${COMP_WORDS[COMP_CWORD - 2]} == --json ]]; then
        COMPREPLY=($(compgen -W "$json_formats" -- "$cur"))
        return 0
    fi
    if [[ $cur == --json=* ]]; then
        COMPREPLY=($(compgen -W "$json_formats" -- "${cur#--json=}"))
        return 0
    fi

    case $prev in
    -m | --model | --fallback)
        COMPREPLY=($(compgen -W "$(_bankr_llm_model_ids)" -- "$cur"))
        return 0
        ;;
    --api)
        [[ $verb == chat ]] && { COMPREPLY=($(compgen -W "auto openai anthropic" -- "$cur")); return 0; }
        ;;
    --key)
        COMPREPLY=($(compgen -W "endpoint env inline" -- "$cur"))
        return 0
        ;;
    -l | --lifetime)
        COMPREPLY=($(compgen -W "connection expiring persistent" -- "$cur"))
        return 0
        ;;
    -a | --app)
        [[ $verb == token ]] && { COMPREPLY=($(compgen -W "claude-code opencode openclaw cli" -- "$cur")); return 0; }
        [[ $verb == usage ]] && return 0
        ;;
    --models)
        COMPREPLY=($(compgen -W "$(_bankr_llm_model_ids)" -- "$cur"))
        return 0
        ;;
    --ttl | --budget)
        return 0
        ;;
    -b | --by)
        [[ $verb == usage ]] && { COMPREPLY=($(compgen -W "app model day hour" -- "$cur")); return 0; }
        [[ $verb == token ]] && return 0
        ;;
    --since)
        [[ $verb == usage ]] && { COMPREPLY=($(compgen -W "today 1d 7d 30d" -- "$cur")); return 0; }
        ;;
    --privacy)
        COMPREPLY=($(compgen -W "standard zdr private" -- "$cur"))
        return 0
        ;;
    --attach | -o | --output)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
        ;;
    -n | --count | --size | --quality | --timeout)
        return 0
        ;;
    -s | --system | --max-tokens | --temperature | --token | -t | --amount | --threshold | --tokens | \
        --llm-key | --api-key)
        return 0
        ;;
    esac

    case $verb in
    "")
        opts="-h --help --version --no-ask-password"
        [[ $cur == -* ]] || opts=$verbs
        ;;
    status) opts="-h --help -j --json --json=" ;;
    models) opts="-h --help -j --json --json= -r --refresh --zdr --private" ;;
    chat) opts="-h --help -j --json --json= -m --model -s --system --max-tokens --temperature --api --fallback --privacy --attach --usage --raw" ;;
    image) opts="-h --help -j --json --json= -o --output -m --model -n --count --size --quality --privacy --timeout" ;;
    login) opts="-h --help --llm-key --api-key" ;;
    token) opts="-h --help -a --app -l --lifetime -t --ttl -b --budget -m --models -j --json --json= --openclaw-exec" ;;
    endpoint)
        case $sub in
        "")
            opts="-h --help -j --json --json="
            [[ $cur == -* ]] || opts="revoke"
            ;;
        *) opts="-h --help" ;;
        esac
        ;;
    setup)
        if [[ -z $sub && $cur != -* ]]; then
            opts="openclaw opencode claude cursor"
        else
            opts="-h --help --install --key --force"
        fi
        ;;
    key)
        case $sub in
        "") opts="set clear import status validate reveal" ;;
        set | clear) opts="-h --help --api" ;;
        import) opts="-h --help --remove-plaintext" ;;
        *) opts="-h --help" ;;
        esac
        ;;
    config)
        case $sub in
        "") opts="get set" ;;
        get | set)
            # One KEY after get/set.
            [[ $prev == get || $prev == set ]] && opts="llmKey apiKey llmUrl apiUrl"
            ;;
        esac
        ;;
    usage)
        case $sub in
        recent) opts="-h --help -n -a --app -j --json --json=" ;;
        *)
            opts="-h --help -b --by -s --since -a --app -j --json --json="
            [[ -z $sub && $cur != -* ]] && opts="recent"
            ;;
        esac
        ;;
    budget)
        case $sub in
        "")
            opts="-h --help -j --json --json="
            [[ $cur == -* ]] || opts="set clear"
            ;;
        *) opts="" ;;
        esac
        ;;
    credits)
        case $sub in
        "")
            opts="-h --help -j --json --json= -r --refresh -t --threshold"
            [[ $cur == -* ]] || opts="add auto"
            ;;
        add) opts="-h --help --token -y --yes" ;;
        auto) opts="-h --help --enable --disable --amount --threshold --tokens -j --json --json=" ;;
        esac
        ;;
    esac

    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    # "--json=" wants its value right after the "=", without a space.
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}

complete -F _bankr_llm bankr-llm
