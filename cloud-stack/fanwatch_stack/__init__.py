"""The fanwatch cloud stack (AWS CDK v2, Python).

Importing this package first points jsii at a supported Node.js (see :mod:`fanwatch_stack.node`): it
must happen before ``aws_cdk`` is imported, because jsii starts its Node process on that import.
"""

from fanwatch_stack.node import use_packaged_node

use_packaged_node()
