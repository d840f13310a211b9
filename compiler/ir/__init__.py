"""The typed graph IR."""

from .dtypes import DType
from .graph import Graph, Node, Value
from .printer import print_graph

__all__ = ["DType", "Graph", "Node", "Value", "print_graph"]
