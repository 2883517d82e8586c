"""Export (after finalize): ONNX, INT8 calibration, AOTInductor packages, manifests.

Light at import time: ONNX, ONNX Runtime's quantizer and torch.export load only when used.
"""

from edgeprune.export.aoti import export_aoti
from edgeprune.export.int8 import CalibrationRecipe, Int8Artifacts, load_recipe, quantize_int8
from edgeprune.export.manifest import Manifest, check_manifest, read_manifest, write_manifest
from edgeprune.export.onnx_export import OnnxExportInfo, describe_onnx, export_onnx, load_onnx_checked
from edgeprune.export.pick import ShippedPick, ship_pick

__all__ = [
    "CalibrationRecipe",
    "Int8Artifacts",
    "Manifest",
    "OnnxExportInfo",
    "ShippedPick",
    "check_manifest",
    "describe_onnx",
    "export_aoti",
    "export_onnx",
    "load_onnx_checked",
    "load_recipe",
    "quantize_int8",
    "read_manifest",
    "ship_pick",
    "write_manifest",
]
