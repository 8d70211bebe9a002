#!/bin/sh
echo "fake toco: $*" >&2
exit 1
