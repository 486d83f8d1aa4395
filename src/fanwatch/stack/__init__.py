"""The road to an AWS account: package the cloud stack for plain CloudFormation
(:mod:`~fanwatch.stack.package`) and check a deployed one (:mod:`~fanwatch.stack.check`);
``fanwatch stack ...`` (:mod:`~fanwatch.stack.cli`)."""

__all__: list[str] = []  # the modules are the API: fanwatch.stack.package, .check, .cli
