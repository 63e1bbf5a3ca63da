"""diabetes-mlops: build, retrain, release and monitor a diabetes ridge regression, locally or on Azure."""
