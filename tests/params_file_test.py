"""An attribute of several lines reaches our tools as one argument, through Bazel's params file.

tests:multiline_override_graph sets one box coder scale per line of its
config_override; the rules write the export's flags shell-quoted
(tools/private/actions.bzl), so both lines must reach the exported graph.
"""

import tensorflow as tf
from absl.testing import absltest

import testing


class ParamsFileTest(absltest.TestCase):

    def test_each_line_of_a_multiline_config_override_takes_effect(self):
        graph_def = tf.compat.v1.GraphDef()
        with open(testing.runfile("tests/multiline_override_graph/tflite_graph.pb"), "rb") as graph:
            graph_def.ParseFromString(graph.read())
        post = next(node for node in graph_def.node if node.name == "TFLite_Detection_PostProcess")
        self.assertEqual([post.attr[key].f for key in ("y_scale", "x_scale", "h_scale", "w_scale")], [8, 9, 5, 5])


if __name__ == "__main__":
    absltest.main()
