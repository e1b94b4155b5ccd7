#include <QApplication>

#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("DocDSA"));
  QApplication::setOrganizationName(QStringLiteral("DocDSA"));
  QApplication::setApplicationVersion(QStringLiteral("0.1.0"));
  docdsa::gui::MainWindow w;
  w.show();
  return QApplication::exec();
}
