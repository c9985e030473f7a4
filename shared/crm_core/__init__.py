"""The CRM's domain package, deployed as the Lambda layer every function imports."""
