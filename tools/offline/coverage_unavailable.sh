#!/bin/sh
echo "bazel coverage is not available with the offline Bazel 4 bootstrap of rules_ssd_tflite" >&2
exit 1
