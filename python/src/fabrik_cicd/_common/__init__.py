"""Where fabric-cicd keeps its exception and result types, for scripts that import them from
``fabric_cicd._common._exceptions`` / ``._deployment_result``."""
