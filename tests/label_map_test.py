"""label_map.pbtxt (the OD API's StringIntLabelMap) read into labels by class index, as models/coco_labels.txt."""

import json
import re

from absl.testing import absltest

import testing
from ssd_tflite import label_map
from ssd_tflite.errors import InputError


def zoo_style_map(categories: list[dict]) -> str:
    """A label map laid out as the zoo's mscoco_label_map.pbtxt: a Freebase-like id as name, the name shown."""
    return "".join(f'item {{\n  name: "/m/{category["id"]:05x}"\n  id: {category["id"]}\n'
                   f'  display_name: "{category["name"]}"\n}}\n' for category in categories)


class LabelMapTest(absltest.TestCase):

    def assert_refused(self, text: str, line: int, *fragments: str) -> None:
        path = self.create_tempfile("label_map.pbtxt", text).full_path
        with self.assertRaises(InputError) as refused:
            label_map.read(path)
        self.assertTrue(str(refused.exception).startswith(f"{path}:{line}: "), refused.exception)
        for fragment in fragments:
            self.assertIn(fragment, str(refused.exception))

    def test_the_coco_map_gives_the_repositorys_coco_labels_with_its_gaps(self):
        # COCO's own 80 categories (ids 1..90 with 10 gaps), from the annotations of coco128.
        with open(testing.testdata("coco128/instances.json")) as annotations:
            categories = json.load(annotations)["categories"]
        with open(testing.runfile("models/coco_labels.txt")) as labels:
            coco_labels = labels.read().splitlines()
        self.assertEqual(label_map.parse(zoo_style_map(categories[::-1])), coco_labels)  # any item order
        self.assertEqual(coco_labels.count(label_map.UNKNOWN_LABEL), 10)

    def test_a_fine_tune_map_with_names_only(self):
        text = "item {\n  id: 1\n  name: 'cat'\n}\n\nitem {\n  id: 2\n  name: 'dog'\n}\n"
        self.assertEqual(label_map.parse(text), ["cat", "dog"])

    def test_display_name_is_preferred_and_name_is_the_fallback(self):
        text = 'item { id: 1 name: "/m/01g317" display_name: "person" } item { id: 3 name: "car" display_name: "" }'
        self.assertEqual(label_map.parse(text), ["person", "???", "car"])

    def test_the_text_format_syntax_label_maps_use(self):
        text = ("# a comment\nitem: { id: 2; name: 'a' 'b', display_name: \"caf\\303\\251 \\\"x\\\"\" }  # more\n"
                "item {\n  id: 1 name: \"\\u00e9t\\xc3\\xa9\" }\n")
        self.assertEqual(label_map.parse(text), ["été", 'café "x"'])

    def test_keypoints_are_read_and_ignored(self):
        text = 'item { id: 1 name: "person" keypoints { id: 0 label: "nose" } keypoints { id: 1 label: "eye" } }'
        self.assertEqual(label_map.parse(text), ["person"])

    def test_with_num_classes_the_labels_run_to_it_and_larger_ids_are_refused(self):
        text = 'item { id: 1 name: "cat" }\nitem {\n  id: 3\n  name: "dog"\n}\n'
        self.assertEqual(label_map.parse(text, num_classes=5), ["cat", "???", "dog", "???", "???"])
        path = self.create_tempfile("label_map.pbtxt", text).full_path
        with self.assertRaisesRegex(InputError, f"^{re.escape(path)}:3: id 3 is outside 1..2 \\(num_classes is 2\\)"):
            label_map.read(path, num_classes=2)

    def test_an_item_without_id_is_refused_at_its_line(self):
        self.assert_refused('item { id: 1 name: "a" }\n\nitem {\n  name: "b"\n}\n', 3, "no id")

    def test_a_duplicate_id_is_refused_at_its_line(self):
        self.assert_refused('item { id: 1 name: "a" }\nitem {\n  id: 1\n  name: "b"\n}\n', 3, "id 1 again",
                            "first on line 1")

    def test_id_0_is_refused_as_the_background(self):
        self.assert_refused('item {\n  id: 0\n  name: "background"\n}\n', 2, "background", "1..10000")

    def test_an_unknown_field_is_refused_at_its_line(self):
        self.assert_refused('item {\n  id: 1\n  dispaly_name: "a"\n}\n', 3, "unknown field 'dispaly_name'",
                            "display_name")
        self.assert_refused('item { id: 1 name: "a" }\nclasses: 3\n', 2, "unknown field 'classes'")

    def test_an_unterminated_string_is_refused_at_its_line(self):
        self.assert_refused('item {\n  id: 1\n  name: "person\n}\n', 3, "not closed", '"person')

    def test_other_malformed_maps_are_refused_at_their_line(self):
        self.assert_refused('item {\n  id: 1\n  name: "a"\n', 1, "never closed")
        self.assert_refused('item { id: 1 name: "a" }\n}\n', 2, "closes no block")
        self.assert_refused('item {\n  id: "1"\n}\n', 2, "id takes an integer")
        self.assert_refused('item {\n  id: 1.5\n}\n', 2, "unexpected text")
        self.assert_refused('item {\n  id: 1\n  name: "a"\n  name: "b"\n}\n', 4, "a second name", "line 3")
        self.assert_refused('item {\n  id: 1\n}\n', 1, "no display_name or name")
        self.assert_refused('item { id: 1 name: "a\\nb" }\n', 1, "line break")
        self.assert_refused('item { id: 1 name: "\\377" }\n', 1, "not UTF-8")
        self.assert_refused('item { id 1 }\n', 1, "expected ':'")

    def test_a_map_without_items_or_file_is_refused(self):
        path = self.create_tempfile("empty.pbtxt", "# nothing\n").full_path
        with self.assertRaisesRegex(InputError, f"^{re.escape(path)}: no item"):
            label_map.read(path)
        with self.assertRaisesRegex(InputError, "missing.pbtxt: no such label map"):
            label_map.read(self.create_tempdir().full_path + "/missing.pbtxt")


if __name__ == "__main__":
    absltest.main()
