# Smoke test of examples/federated: trains the MLP for two epochs on 2,400
# images (600 more for validation) by data parallelism and by federated
# averaging with 4 local steps, then checks that summary.json reports both
# methods with a test accuracy above 0.5 (chance is 0.1), and that federated
# averaging exchanged the model about a quarter as often.
#   cmake -DEXAMPLE=path/to/federated [-DLAUNCHER="mpirun;-np;2;..."] -DOUT=dir
#         -P check_federated.cmake

file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND ${LAUNCHER} "${EXAMPLE}" --epochs 2 --limit-train 3000 --limit-test 500
            --validation 600 --batch-size 16 --local-steps 4 --out "${OUT}"
    RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "federated exited with ${result}")
endif()

file(READ "${OUT}/summary.json" summary)
string(JSON ranks GET "${summary}" ranks)
if(DEFINED LAUNCHER AND NOT ranks EQUAL 2)
    message(FATAL_ERROR "expected 2 ranks: ${summary}")
endif()
string(JSON parallel_name GET "${summary}" methods 0 method)
string(JSON parallel_accuracy GET "${summary}" methods 0 test_accuracy)
string(JSON parallel_exchanges GET "${summary}" methods 0 exchanges)
string(JSON fedavg_name GET "${summary}" methods 1 method)
string(JSON fedavg_accuracy GET "${summary}" methods 1 test_accuracy)
string(JSON fedavg_exchanges GET "${summary}" methods 1 exchanges)
if(NOT parallel_name STREQUAL "data_parallel" OR NOT fedavg_name STREQUAL "fedavg"
   OR parallel_accuracy LESS 0.5 OR fedavg_accuracy LESS 0.5)
    message(FATAL_ERROR "unexpected summary: ${summary}")
endif()
# 2,400 images on 2 ranks in batches of 16: 75 steps per epoch, 150 in all.
# Federated averaging averages after every 4th step and at each epoch's end.
if(DEFINED LAUNCHER AND (NOT parallel_exchanges EQUAL 150 OR NOT fedavg_exchanges EQUAL 38))
    message(FATAL_ERROR "unexpected exchange counts: ${summary}")
endif()
message(STATUS "federated smoke run: ${parallel_accuracy} data-parallel, ${fedavg_accuracy} FedAvg")
