"""Constants the rules share with the Python tools; //tests:constants_test checks them equal.

Only literal assignments: the test reads this file as Python.
"""

# The exported graph's input, and the outputs of its TFLite_Detection_PostProcess op
# (py/ssd_tflite/graph_contract.py: INPUT_NAME, OUTPUT_ARRAYS).
INPUT_ARRAY = "normalized_input_image_tensor"
OUTPUT_ARRAYS = [
    "TFLite_Detection_PostProcess",
    "TFLite_Detection_PostProcess:1",
    "TFLite_Detection_PostProcess:2",
    "TFLite_Detection_PostProcess:3",
]

# The export's post-processing flags and their upstream defaults (graph_contract.PostProcessingFlags).
POSTPROCESSING_DEFAULTS = {
    "max_detections": 10,
    "max_classes_per_detection": 1,
    "detections_per_class": 100,
    "use_regular_nms": False,
}

# The file that marks a fully installed virtualenv (tools/private/install_venv.py: COMPLETE_MARKER).
VENV_COMPLETE_MARKER = ".rules_ssd_tflite_complete"

# The graph file the exporter writes into its --output_directory.
GRAPH_BASENAME = "tflite_graph.pb"

# Remote execution: where a worker image holds the environments (tools/remote/Dockerfile), and the
# image name whose tag is the environment's name (tools/private/install_venv.py: environment_name).
WORKER_VENVS_ROOT = "/opt/rules_ssd_tflite/venvs"
WORKER_IMAGE_PREFIX = "docker://rules-ssd-tflite-worker:"
