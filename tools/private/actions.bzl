"""Running tools in actions without flooding the build log."""

# TensorFlow logs a lot, even on success; show a tool's output only when it fails.
_QUIETLY = """quietly() {
  log="$(mktemp)"
  if "$@" >"$log" 2>&1; then rm -f "$log"; else status=$?; cat "$log" >&2; rm -f "$log"; return $status; fi
}
"""

def run_quietly(ctx, command, **kwargs):
    """ctx.actions.run_shell whose `command` may call `quietly TOOL ARGS...`."""
    ctx.actions.run_shell(command = _QUIETLY + command, **kwargs)
