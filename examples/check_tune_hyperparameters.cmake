# Smoke test of the tuning example: a grid search of 2 learning rates and 1
# batch size, 2 folds of 300 images each, 1 epoch per run, and a refit on all
# 600 training images. Checks that search.csv holds a header and one row per
# configuration, and that summary.json reports both configurations and a
# test accuracy above 0.5 (chance is 0.1).
#   cmake -DEXAMPLE=path/to/tune_hyperparameters -DOUT=dir -P check_tune_hyperparameters.cmake

file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND "${EXAMPLE}" --train-size 600 --test-size 500 --folds 2 --epochs 1
            --search grid --lr-points 2 --batch-size-points 1 --out "${OUT}" --min-accuracy 0.5
    RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "tune_hyperparameters exited with ${result}")
endif()

foreach(name search.csv summary.json)
    if(NOT EXISTS "${OUT}/${name}")
        message(FATAL_ERROR "tune_hyperparameters did not write ${OUT}/${name}")
    endif()
endforeach()

file(STRINGS "${OUT}/search.csv" rows)
list(LENGTH rows row_count)
list(GET rows 0 header)
if(NOT row_count EQUAL 3 OR NOT header MATCHES "^rank,lr,batch_size,mean_validation_loss,")
    message(FATAL_ERROR "search.csv should hold a header and 2 configurations, got: ${rows}")
endif()

file(READ "${OUT}/summary.json" summary)
string(JSON configurations GET "${summary}" configurations)
string(JSON accuracy GET "${summary}" test_accuracy)
if(NOT configurations EQUAL 2 OR accuracy LESS 0.5)
    message(FATAL_ERROR "unexpected summary: ${summary}")
endif()
message(STATUS "tune_hyperparameters smoke run: test accuracy ${accuracy}")
