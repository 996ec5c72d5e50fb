// quiver-python-worker: one Python worker process of the python runtime plugin. Embeds Debian's
// CPython 3.11 as if it were /usr/bin/python3 (same sys.executable, sys.path and dist-packages),
// puts the plugin's Python library first on sys.path and hands the socket and the shared memory
// region to quiver_model._worker.main, which serves the model until the server closes the socket.
//
// Started by PythonWorker::Start (worker_process.cc), never by hand:
//   quiver-python-worker --socket-fd=3 --region-fd=4 --python-lib=DIR --model=NAME
// A watchdog thread exits the process as soon as the server's end of the socket closes, even
// while Python is busy in a long predict(): a worker never outlives its server.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

constexpr uint32_t kErrorFrame = 19;  // worker_protocol.h FrameKind::kError

struct Args {
  int socket_fd = -1;
  int region_fd = -1;
  std::string python_lib;
  std::string model;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&a](std::string_view prefix, std::string* out) {
      if (!a.starts_with(prefix)) return false;
      *out = std::string(a.substr(prefix.size()));
      return true;
    };
    std::string v;
    if (value("--socket-fd=", &v)) {
      args->socket_fd = std::atoi(v.c_str());
    } else if (value("--region-fd=", &v)) {
      args->region_fd = std::atoi(v.c_str());
    } else if (value("--python-lib=", &v)) {
      args->python_lib = v;
    } else if (value("--model=", &v)) {
      args->model = v;
    } else {
      return false;
    }
  }
  return args->socket_fd >= 0 && args->region_fd >= 0 && !args->python_lib.empty();
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// Reports a failure before the Python side could take over (the interpreter or the worker
// module would not start) as the answer to the load request the server already sent.
void SendError(int fd, const std::string& message) {
  std::string header = "{\"code\":\"INTERNAL\",\"message\":";
  AppendJsonString(message, &header);
  header.push_back('}');
  char head[16];
  uint32_t kind = kErrorFrame;
  uint32_t header_len = static_cast<uint32_t>(header.size());
  uint64_t payload_len = 0;
  std::memcpy(head, &kind, 4);
  std::memcpy(head + 4, &header_len, 4);
  std::memcpy(head + 8, &payload_len, 8);
  std::string frame(head, sizeof(head));
  frame += header;
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::write(fd, frame.data() + done, frame.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// "<Type>: <message>" of the pending Python exception, which is then printed (with its traceback)
// to stderr, the server's log.
std::string TakePythonError() {
  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  std::string message = "unknown Python error";
  if (type != nullptr) {
    PyObject* name = PyObject_GetAttrString(type, "__name__");
    PyObject* text = value ? PyObject_Str(value) : nullptr;
    const char* n = name ? PyUnicode_AsUTF8(name) : nullptr;
    const char* t = text ? PyUnicode_AsUTF8(text) : nullptr;
    message = std::string(n ? n : "Exception") + (t && *t ? std::string(": ") + t : "");
    Py_XDECREF(name);
    Py_XDECREF(text);
  }
  PyErr_Restore(type, value, traceback);
  PyErr_Print();
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::fprintf(stderr,
                 "quiver-python-worker: started by quiver serve's python runtime, not by hand\n"
                 "usage: quiver-python-worker --socket-fd=N --region-fd=N --python-lib=DIR "
                 "--model=NAME\n");
    return 2;
  }

  std::thread([fd = args.socket_fd] {
    pollfd p{fd, POLLRDHUP, 0};
    for (;;) {
      int r = ::poll(&p, 1, -1);
      if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0) ::_exit(0);
      if (r < 0 && errno != EINTR) ::_exit(70);
    }
  }).detach();

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.parse_argv = 0;
  config.buffered_stdio = 0;  // print() in a model reaches the log at once
  // No __pycache__ written into model folders (which may be read-only, or someone's checkout).
  config.write_bytecode = 0;
  PyStatus status = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
  if (!PyStatus_Exception(status)) {
    status = PyConfig_SetString(&config, &config.executable, L"/usr/bin/python3");
  }
  wchar_t program[] = L"quiver-python-worker";
  wchar_t* python_argv[] = {program};
  if (!PyStatus_Exception(status)) status = PyConfig_SetArgv(&config, 1, python_argv);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    std::string message = "cannot start the embedded Python interpreter: ";
    message += status.err_msg ? status.err_msg : "unknown error";
    std::fprintf(stderr, "quiver-python-worker: %s\n", message.c_str());
    SendError(args.socket_fd, message);
    return 1;
  }

  int exit_code = 1;
  PyObject* path = PySys_GetObject("path");  // borrowed
  PyObject* lib = PyUnicode_DecodeFSDefault(args.python_lib.c_str());
  if (path == nullptr || lib == nullptr || PyList_Insert(path, 0, lib) != 0) {
    SendError(args.socket_fd, "cannot set up sys.path: " + TakePythonError());
    Py_XDECREF(lib);
    std::fflush(nullptr);
    ::_exit(1);
  }
  Py_DECREF(lib);
  PyObject* module = PyImport_ImportModule("quiver_model._worker");
  if (module == nullptr) {
    SendError(args.socket_fd, "cannot start the python worker (import quiver_model._worker from " +
                                  args.python_lib + "): " + TakePythonError());
    std::fflush(nullptr);
    ::_exit(1);
  }
  PyObject* result = PyObject_CallMethod(module, "main", "iis", args.socket_fd, args.region_fd,
                                         args.model.c_str());
  if (result == nullptr) {
    // Only a bug in the worker loop or a SystemExit from a model gets here.
    if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
      PyObject *type, *value, *traceback;
      PyErr_Fetch(&type, &value, &traceback);
      PyErr_NormalizeException(&type, &value, &traceback);
      PyObject* code = value ? PyObject_GetAttrString(value, "code") : nullptr;
      exit_code = code && PyLong_Check(code) ? static_cast<int>(PyLong_AsLong(code)) : 1;
      std::fprintf(stderr, "quiver-python-worker (model '%s'): the model called sys.exit(%d)\n",
                   args.model.c_str(), exit_code);
      Py_XDECREF(code);
      Py_XDECREF(type);
      Py_XDECREF(value);
      Py_XDECREF(traceback);
    } else {
      std::string message = TakePythonError();
      std::fprintf(stderr, "quiver-python-worker (model '%s'): %s\n", args.model.c_str(),
                   message.c_str());
    }
  } else {
    exit_code = PyLong_Check(result) ? static_cast<int>(PyLong_AsLong(result)) : 0;
    Py_DECREF(result);
  }
  Py_DECREF(module);
  // No interpreter finalization: it can take long for large models and serves nothing here.
  std::fflush(nullptr);
  ::_exit(exit_code);
}
