"""Every SSD architecture the export can build, by its `model.ssd.feature_extractor.type`.

The one table of them: `pipeline_config` refuses a type not in it, and
`export` and `preprocessing` look a model's architecture up in it. Adding an
architecture is a module that declares its `ARCHITECTURE` (see `architecture`)
and its entry here; docs/adding_an_architecture.md walks through it.
"""

from ssd_tflite import mobilenet_v1, mobilenet_v2, resnet_v1_fpn
from ssd_tflite.architecture import Architecture

BY_TYPE: dict[str, Architecture] = {
    type_name: architecture
    for architecture in (mobilenet_v1.ARCHITECTURE, mobilenet_v2.ARCHITECTURE, resnet_v1_fpn.ARCHITECTURE)
    for type_name in architecture.types
}
