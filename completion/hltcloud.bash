# bash completion for the hltcloud tools: openstack-hlt-manage, openstack-prefill-cache,
# rsync-wave.py, openstack-enter (and any later tool: add its name to _HLTCLOUD_TOOLS and
# its positional arguments to _hltcloud_positional).
#
# Switches come from the tool's own --help (read once a shell session), so they never drift
# from what the tool accepts. Host names come from the cache `openstack-hlt-manage status`
# refreshes ($HLTCLOUD_CACHE_DIR/hosts, default /var/cache/hltcloud/hosts); @files are
# files. Image names (openstack-prefill-cache) are asked from Glance only when it answers
# within a few seconds: otherwise nothing is offered, and the prompt never hangs. Roles
# (openstack-enter) come from its credentials directory, --os-cloud names from the
# clouds.yaml the tools would read, each checked as the tools check them.
#
# Names come from the cloud, and anyone can name an image or register a host: a word list is
# only filtered, as text, never given to `compgen -W` (which expands `$(...)` in its words),
# and only names of validate.py's rule are offered (letters, digits, '.', '_', '-', not '.' or
# '-' first): any other would be the shell's to expand once it is on the command line.

_HLTCLOUD_TOOLS="openstack-hlt-manage openstack-prefill-cache rsync-wave.py openstack-enter"
_HLTCLOUD_IMAGE_SECONDS=3
_HLTCLOUD_NAME='^[A-Za-z0-9_][A-Za-z0-9._-]*$'
declare -gA _HLTCLOUD_SWITCHES _HLTCLOUD_VALUED

# "--switch" words of TOOL's --help; those followed by a METAVAR take a value.
_hltcloud_switches() {
    local tool=$1 line
    [[ -n ${_HLTCLOUD_SWITCHES[$tool]+set} ]] && return
    local all="" valued=""
    while read -r line; do
        if [[ $line =~ ^(-[A-Za-z](\ [A-Z][A-Z_]*)?,\ )?(--[a-z][a-z0-9-]*)(\ ([A-Z][A-Z_]*))? ]]; then
            all+=" ${BASH_REMATCH[3]}"
            [[ -n ${BASH_REMATCH[5]} ]] && valued+=" ${BASH_REMATCH[3]}=${BASH_REMATCH[5]}"
        fi
    done < <(timeout 10 "$tool" --help 2>/dev/null)
    _HLTCLOUD_SWITCHES[$tool]=$all
    _HLTCLOUD_VALUED[$tool]=$valued
}

# The METAVAR of SWITCH if it takes a value, else nothing.
_hltcloud_metavar() {
    local pair
    for pair in ${_HLTCLOUD_VALUED[$1]}; do
        [[ ${pair%%=*} == "$2" ]] && { printf '%s' "${pair#*=}"; return; }
    done
}

# What the Nth positional argument (0-based) of TOOL is: command, image, file, role, hosts.
_hltcloud_positional() {
    case $1:$2 in
        openstack-hlt-manage:0) echo command ;;
        openstack-hlt-manage:*) echo hosts ;;
        openstack-prefill-cache:0) echo image ;;
        openstack-prefill-cache:*) echo hosts ;;
        rsync-wave.py:0) echo file ;;
        rsync-wave.py:1) echo none ;;
        rsync-wave.py:*) echo hosts ;;
        openstack-enter:0) echo role ;;
        *) echo none ;;
    esac
}

# The library beside TOOL's real path, as bin/ finds it.
_hltcloud_lib() {
    local exe
    exe=$(type -P "$1") || return 1
    exe=$(readlink -f -- "$exe") || return 1
    local dir=${exe%/*} lib
    for lib in "$dir/../lib" "$dir/../share/hltcloud/lib"; do
        [[ -f $lib/hltcloud/__init__.py ]] && { printf '%s' "$lib"; return 0; }
    done
    return 1
}

# COMPREPLY from compgen ARGS (files, commands), one candidate a line (names with spaces stay
# whole).
_hltcloud_reply() {
    mapfile -t COMPREPLY < <(compgen "$@")
}

# COMPREPLY: the lines of standard input that start with CUR, each after HEAD (the items of a
# host list before the cursor's). Compared as text: nothing in them is ever expanded.
_hltcloud_filter() {
    local head=$1 cur=$2 word
    COMPREPLY=()
    while IFS= read -r word || [[ -n $word ]]; do
        [[ $word == "$cur"* ]] && COMPREPLY+=("$head$word")
    done
}

# The lines of standard input that are names by validate.py's rule; the others are dropped.
_hltcloud_names() {
    local word
    while IFS= read -r word || [[ -n $word ]]; do
        [[ $word =~ $_HLTCLOUD_NAME ]] && printf '%s\n' "$word"
    done
}

_hltcloud_hosts() {
    local cur=$1 head="" cache=${HLTCLOUD_CACHE_DIR:-/var/cache/hltcloud}/hosts
    if [[ $cur == @* ]]; then  # a host list file
        _hltcloud_reply -f -P @ -- "${cur#@}"
        return
    fi
    if [[ $cur == *,* ]]; then  # complete the last item of a comma-separated list
        head=${cur%,*},
        cur=${cur##*,}
    fi
    [[ -r $cache ]] || return
    _hltcloud_filter "$head" "$cur" < <(_hltcloud_names < "$cache")
}

# Names of LIST (images, roles, clouds: hltcloud.ops.complete) for TOOL that start with CUR.
_hltcloud_listed() {
    local list=$1 tool=$2 cur=$3 lib
    lib=$(_hltcloud_lib "$tool") || return
    _hltcloud_filter "" "$cur" < <(PYTHONPATH=$lib timeout "$_HLTCLOUD_IMAGE_SECONDS" \
        python3 -m hltcloud.ops.complete "$list" 2>/dev/null | _hltcloud_names)
}

_hltcloud_complete() {
    local tool=${COMP_WORDS[0]##*/} cur=${COMP_WORDS[COMP_CWORD]}
    local i word positional=0 after_dashes=0
    _hltcloud_switches "$tool"
    # Count the positional words before the cursor (a switch's value is not one).
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((after_dashes)); then
            ((positional++)); continue
        fi
        case $word in
            --) after_dashes=1 ;;
            -*) [[ -n $(_hltcloud_metavar "$tool" "$word") ]] && ((i++)) ;;
            *) ((positional++)) ;;
        esac
    done
    local previous=${COMP_WORDS[COMP_CWORD-1]}
    if ((COMP_CWORD > 1)) && [[ $previous == -* ]] && ((!after_dashes)); then
        [[ $previous == --os-cloud ]] && { _hltcloud_listed clouds "$tool" "$cur"; return; }
        case $(_hltcloud_metavar "$tool" "$previous") in
            FILE) _hltcloud_reply -f -- "$cur"; return ;;
            "") ;;
            *) COMPREPLY=(); return ;;  # a number or a name: nothing to offer
        esac
    fi
    if ((after_dashes)); then  # openstack-enter ROLE -- COMMAND
        ((positional <= 1)) && _hltcloud_reply -c -- "$cur"
        return
    fi
    if [[ $cur == -* ]]; then
        _hltcloud_filter "" "$cur" < <(printf '%s\n' ${_HLTCLOUD_SWITCHES[$tool]})
        return
    fi
    case $(_hltcloud_positional "$tool" "$positional") in
        command) _hltcloud_filter "" "$cur" < <(printf '%s\n' enable disable status runvms \
                     listwns vmstats reconcile) ;;
        hosts) _hltcloud_hosts "$cur" ;;
        image) _hltcloud_listed images "$tool" "$cur" ;;
        role) _hltcloud_listed roles "$tool" "$cur" ;;
        file) _hltcloud_reply -f -- "$cur" ;;
        *) COMPREPLY=() ;;
    esac
}

complete -F _hltcloud_complete $_HLTCLOUD_TOOLS
