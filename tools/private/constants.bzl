"""Constants the rules share with the Python tools and the worker image; //tests:constants_test checks them equal.

Only literal assignments: the test reads this file as Python.
"""

# The exported graph's input, and the outputs of its TFLite_Detection_PostProcess op
# (py/ssd_tflite/tflite_graph.py: INPUT_NAME, OUTPUT_ARRAYS).
INPUT_ARRAY = "normalized_input_image_tensor"
OUTPUT_ARRAYS = [
    "TFLite_Detection_PostProcess",
    "TFLite_Detection_PostProcess:1",
    "TFLite_Detection_PostProcess:2",
    "TFLite_Detection_PostProcess:3",
]

# The export's post-processing flags and their upstream defaults (tflite_graph.PostProcessingFlags).
POSTPROCESSING_DEFAULTS = {
    "max_detections": 10,
    "max_classes_per_detection": 1,
    "detections_per_class": 100,
    "use_regular_nms": False,
}

# The files ssd_tflite_model writes beside `<name>.tflite`: the model contract (JSON) and the class
# names (py/ssd_tflite/contract.py: CONTRACT_SUFFIX, LABELS_SUFFIX; demo/serve.py: CONTRACT_SUFFIX).
CONTRACT_SUFFIX = "_contract.json"
LABELS_SUFFIX = "_labels.txt"

# A checkpoint folder as a model-zoo tarball lays it out, and as synthetic_ssd_checkpoint writes it
# with its one data shard (py/ssd_tflite/checkpoint_files.py: PREFIX, DATA_SHARD, STATE_FILE, CONFIG_FILE).
CHECKPOINT_PREFIX = "model.ckpt"
CHECKPOINT_DATA_SHARD = "model.ckpt.data-00000-of-00001"
CHECKPOINT_STATE_FILE = "checkpoint"
CHECKPOINT_CONFIG_FILE = "pipeline.config"

# The file that marks a fully installed virtualenv (tools/private/install_venv.py: COMPLETE_MARKER).
VENV_COMPLETE_MARKER = ".rules_ssd_tflite_complete"

# The graph file the exporter writes into its --output_directory (py/ssd_tflite/export.py: GRAPH_FILE).
GRAPH_BASENAME = "tflite_graph.pb"

# Remote execution: where a worker image holds the environments (tools/remote/Dockerfile), and the
# image name whose tag is the environment's name (tools/private/install_venv.py: environment_name).
WORKER_VENVS_ROOT = "/opt/rules_ssd_tflite/venvs"
WORKER_IMAGE_PREFIX = "docker://rules-ssd-tflite-worker:"

# The browser demo's MediaPipe Tasks Vision package: its repository (MODULE.bazel's use_repo,
# demo/BUILD) and the bundle that demo/serve.py serves (MEDIAPIPE_BUNDLE).
MEDIAPIPE_TASKS_VISION_REPOSITORY = "rules_ssd_tflite_mediapipe_tasks_vision"
MEDIAPIPE_BUNDLE = "vision_bundle.mjs"
