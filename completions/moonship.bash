# bash completion for moonship(1). Installed as
# ${datadir}/bash-completion/completions/moonship; tests/e2e/man_spec.lua checks that every
# command and option the CLI accepts, and no other, is listed here, with the values it takes.

_moonship_options() {
    case "$1" in
        deploy) echo "-w --workflow -e --env --image --domain -n --namespace --context --kubeconfig --hooks
            --concurrency --qps --burst --timeout --settle --dry-run --resume --prune --no-prune -o --output --logs --color
            --sim --scenario --time-scale --journal-dir --report --history -h --help" ;;
        diff) echo "-w --workflow -e --env --image --domain -n --namespace --context --kubeconfig --hooks
            --prune --no-prune -o --output --color --sim --scenario -h --help" ;;
        rollback) echo "-w --workflow --to -e --env -n --namespace --context --kubeconfig --hooks --concurrency
            --qps --burst --timeout --settle --dry-run -o --output --logs --color --journal-dir --report
            --history -h --help" ;;
        history) echo "-w --workflow -e --env -n --namespace --context --kubeconfig --hooks -o --output -h --help" ;;
        plan) echo "-w --workflow -e --env --image --domain --hooks --diff -n --namespace --context --kubeconfig
            -f --format --ascii --width --concurrency --journal-dir -h --help" ;;
        report) echo "-o --output -h --help" ;;
        validate) echo "-w --workflow -e --env --image --domain -n --namespace --context --kubeconfig --hooks
            -h --help" ;;
        render) echo "-w --workflow -e --env --image --domain -n --namespace --context --kubeconfig --hooks
            --run-id -h --help" ;;
        run | version) echo "-h --help" ;;
    esac
}

# The workflows of the template named on the command line (or the default one).
_moonship_workflows() {
    local template="" w
    for w in "${COMP_WORDS[@]:2}"; do
        case "$w" in *.yaml | *.yml) template=$w ;; esac
    done
    if [[ -z $template ]]; then
        for w in .release/application_template.yaml moonship.yaml; do
            [[ -f $w ]] && template=$w && break
        done
    fi
    [[ -r $template ]] || return
    # The names under the top-level workflows: key.
    awk '/^workflows:/ {in_wf = 1; next} /^[^ #-]/ {in_wf = 0}
         in_wf && /^[ -]*name:/ {sub(/^[ -]*name:[ ]*/, ""); gsub(/["\047]/, ""); print}' "$template" 2>/dev/null
}

_moonship() {
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W "deploy diff rollback history plan report validate render run version --help --version" -- "$cur")
        return
    fi
    cmd=${COMP_WORDS[1]}
    case "$prev" in
        -w | --workflow)
            mapfile -t COMPREPLY < <(compgen -W "$(_moonship_workflows)" -- "$cur")
            return ;;
        -o | --output)
            if [[ $cmd == report ]]; then
                mapfile -t COMPREPLY < <(compgen -f -X '!*.html' -- "$cur"; compgen -d -- "$cur")
            else
                mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur")
            fi
            return ;;
        -f | --format)
            mapfile -t COMPREPLY < <(compgen -W "text mermaid dot json" -- "$cur")
            return ;;
        --logs)
            mapfile -t COMPREPLY < <(compgen -W "all failed none" -- "$cur")
            return ;;
        --color)
            mapfile -t COMPREPLY < <(compgen -W "auto always never" -- "$cur")
            return ;;
        --context)
            mapfile -t COMPREPLY < <(compgen -W "$(kubectl config get-contexts -o name 2>/dev/null)" -- "$cur")
            return ;;
        -n | --namespace | --env | -e | --image | --domain | --concurrency | --qps | --burst | --timeout | --settle | --time-scale | --width | --run-id | --history | --to)
            return ;;
        --hooks)
            mapfile -t COMPREPLY < <(compgen -f -X '!*.lua' -- "$cur"; compgen -d -- "$cur")
            return ;;
        --report)
            mapfile -t COMPREPLY < <(compgen -f -X '!*.html' -- "$cur"; compgen -d -- "$cur")
            return ;;
        --kubeconfig | --scenario)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
        --journal-dir)
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            return ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_moonship_options "$cmd")" -- "$cur")
        return
    fi
    case "$cmd" in
        run) mapfile -t COMPREPLY < <(compgen -f -X '!*.lua' -- "$cur"; compgen -d -- "$cur") ;;
        report) mapfile -t COMPREPLY < <(compgen -f -X '!*.jsonl' -- "$cur"; compgen -d -- "$cur") ;;
        version) ;;
        *) mapfile -t COMPREPLY < <(compgen -f -X '!*.@(yaml|yml)' -- "$cur"; compgen -d -- "$cur") ;;
    esac
}

complete -o filenames -o bashdefault -F _moonship moonship
